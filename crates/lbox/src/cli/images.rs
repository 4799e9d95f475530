//! Image commands: pull, push, images, rmi, tag, import, save, load, image inspect/history/prune/mount.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use image::manifest::{ImageConfig, Platform};
use image::registry::{self, Progress, PullOptions};
use image::{Reference, Store};

use super::login::registry_options;
use super::output::{self, print_table, table};
use super::progress::Reporter;
use super::TlsArgs;

#[derive(Args, Debug)]
pub struct PullArgs {
    pub image: String,
    /// Pull this platform's variant of a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image's name.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    pub image: String,
    /// Push to this reference instead of the image's own name.
    pub destination: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only images of this repository[:tag].
    pub reference: Option<String>,
    /// Show all images, the build cache's intermediate ones included.
    #[arg(short, long)]
    pub all: bool,
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Show full IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format: table (default) or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove an image even when several repositories tag it.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Tarball path, http(s) URL, or - for standard input.
    pub source: String,
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message for the history.
    #[arg(short, long)]
    pub message: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// docker-archive (default) or oci-archive.
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from this file instead of standard input.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output with a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub image: String,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove every image, not only untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation (LockBox never asks; accepted for Docker compatibility).
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    pub image: String,
}

#[derive(Args, Debug)]
pub struct UnmountArgs {
    /// The path `image mount` printed.
    pub path: PathBuf,
}

pub fn open(root: &Path) -> Result<Store> {
    Store::open(&root.join("images")).with_context(|| format!("open the image store in {}", root.display()))
}

fn parse_ref(s: &str) -> Result<Reference> {
    Ok(s.parse::<Reference>()?)
}

pub fn pull(root: &Path, a: PullArgs) -> Result<i32> {
    let r = pull_image(root, &a)?;
    println!("{r}");
    Ok(0)
}

/// Pull with progress and status lines on stderr; the reference that was pulled.
pub fn pull_image(root: &Path, a: &PullArgs) -> Result<Reference> {
    let r = parse_ref(&a.image)?;
    let store = open(root)?;
    let opts = PullOptions {
        platform: a.platform.as_deref().map(Platform::parse).transpose()?,
    };
    let client = registry::client_for(&r, &registry_options(&a.tls)?, None)?;
    let reporter = Reporter::new(a.quiet);
    if !a.quiet {
        reporter.message(&format!(
            "{}: Pulling from {}",
            r.tag.as_deref().unwrap_or("latest"),
            r.familiar_name()
        ));
    }
    let before = store.find(&r.to_string()).ok().map(|i| i.id);
    let id = registry::pull(&store, &client, &r, &opts, &reporter)?;
    if !a.quiet {
        if let Some(img) = store.image(&id)? {
            if let Some(d) = img.repo_digests.iter().find(|d| d.starts_with(&r.name())) {
                reporter.message(&format!("Digest: {}", d.rsplit('@').next().unwrap_or(d)));
            }
        }
        let status = if before.as_ref() == Some(&id) {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        reporter.message(&format!("Status: {status} {}", r.familiar()));
    }
    Ok(r)
}

pub fn push(root: &Path, a: PushArgs) -> Result<i32> {
    let store = open(root)?;
    let img = store.find(&a.image)?;
    let dest = parse_ref(a.destination.as_deref().unwrap_or(&a.image))?;
    let client = registry::client_for(&dest, &registry_options(&a.tls)?, None)?;
    let reporter = Reporter::new(a.quiet);
    let digest = registry::push(&store, &client, &img.id, &dest, &reporter)?;
    if !a.quiet {
        reporter.message(&format!(
            "{}: digest: {digest}",
            dest.tag.as_deref().unwrap_or("latest")
        ));
    }
    Ok(0)
}

struct Row {
    repo: String,
    tag: String,
    digest: String,
    id: String,
    created: i64,
    size: u64,
}

fn rows(store: &Store, filter: Option<&str>, all: bool) -> Result<Vec<Row>> {
    let filter = filter.map(parse_ref).transpose()?;
    let mut out = Vec::new();
    // The build cache's untagged images are intermediate steps: shown with -a only, as Docker does.
    let hidden = if all { Vec::new() } else { store.cached_images()? };
    for img in store.images()? {
        if img.tags.is_empty() && hidden.contains(&img.id) {
            continue;
        }
        let created = img.created.as_deref().and_then(output::parse_time).unwrap_or(img.added);
        let digest_for = |name: &str| {
            img.repo_digests
                .iter()
                .find(|d| d.split('@').next() == Some(name))
                .and_then(|d| d.split('@').nth(1))
                .unwrap_or("<none>")
                .to_string()
        };
        let mut names: Vec<(String, String, String)> = Vec::new();
        for t in &img.tags {
            if let Ok(r) = t.parse::<Reference>() {
                names.push((
                    r.familiar_name(),
                    r.tag.clone().unwrap_or_default(),
                    digest_for(&r.name()),
                ));
            }
        }
        if names.is_empty() {
            let (repo, digest) = img
                .repo_digests
                .first()
                .and_then(|d| d.parse::<Reference>().ok())
                .map(|r| {
                    (
                        r.familiar_name(),
                        r.digest.map(|d| d.to_string()).unwrap_or("<none>".into()),
                    )
                })
                .unwrap_or(("<none>".into(), "<none>".into()));
            names.push((repo, "<none>".into(), digest));
        }
        for (repo, tag, digest) in names {
            if let Some(f) = &filter {
                if repo != f.familiar_name() {
                    continue;
                }
            }
            out.push(Row {
                repo,
                tag,
                digest,
                id: img.id.to_string(),
                created,
                size: img.size,
            });
        }
    }
    Ok(out)
}

pub fn list(root: &Path, a: ImagesArgs) -> Result<i32> {
    let store = open(root)?;
    // "alpine" matches every tag, "alpine:3" only that one; parsing adds ":latest" either way, so
    // whether a tag was written is read from the text.
    let explicit_tag = a
        .reference
        .as_deref()
        .is_some_and(|s| s.rsplit('/').next().is_some_and(|l| l.contains(':')));
    let mut rows = rows(&store, a.reference.as_deref(), a.all)?;
    if explicit_tag {
        if let Some(want) = a.reference.as_deref().map(parse_ref).transpose()? {
            rows.retain(|r| Some(&r.tag) == want.tag.as_ref());
        }
    }
    let short = |id: &str| {
        if a.no_trunc {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:")[..12].to_string()
        }
    };
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(r.id.clone()) {
                println!("{}", short(&r.id));
            }
        }
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => {
            for r in &rows {
                let v = serde_json::json!({
                    "Repository": r.repo, "Tag": r.tag, "Digest": r.digest, "ID": short(&r.id),
                    "CreatedAt": image::import::rfc3339(r.created), "CreatedSince": output::ago(r.created),
                    "Size": output::size(r.size), "VirtualSize": output::size(r.size), "Containers": "N/A",
                });
                println!("{v}");
            }
        }
        "table" => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if a.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let mut t = table(&header);
            for r in &rows {
                let mut cells = vec![r.repo.clone(), r.tag.clone()];
                if a.digests {
                    cells.push(r.digest.clone());
                }
                cells.extend([short(&r.id), output::ago(r.created), output::size(r.size)]);
                t.add_row(cells);
            }
            print_table(&mut t);
        }
        other => bail!("unknown --format {other:?}: use table or json"),
    }
    Ok(0)
}

pub fn rmi(root: &Path, a: RmiArgs) -> Result<i32> {
    let store = open(root)?;
    let mut failed = false;
    for name in &a.images {
        let untag_only = store
            .find(name)
            .is_ok_and(|i| i.tags.len() > 1 && i.id.to_string() != *name);
        if !untag_only {
            if let Err(e) = super::system::check_image_unused(root, name, a.force) {
                eprintln!("lbox: {e:#}");
                failed = true;
                continue;
            }
        }
        match store.remove_image(name, a.force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("lbox: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn tag(root: &Path, a: TagArgs) -> Result<i32> {
    let store = open(root)?;
    let img = store.find(&a.source)?;
    let target = parse_ref(&a.target)?;
    let name = target
        .tagged()
        .with_context(|| format!("{}: a tag name cannot carry a digest", a.target))?;
    if target.digest.is_some() {
        bail!("{}: a tag name cannot carry a digest", a.target);
    }
    store.set_tag(&name, &img.id)?;
    Ok(0)
}

pub fn import(root: &Path, a: ImportArgs) -> Result<i32> {
    let store = open(root)?;
    let tag = a.reference.as_deref().map(parse_ref).transpose()?;
    let opts = image::import::ImportOptions {
        message: a.message.clone(),
        changes: a.change.clone(),
    };
    let src: Box<dyn Read> = if a.source == "-" {
        Box::new(std::io::stdin().lock())
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        let resp = image::registry::tls::agent("", &Default::default(), true)?
            .get(&a.source)
            .call()
            .with_context(|| format!("download {}", a.source))?;
        if resp.status().as_u16() != 200 {
            bail!("download {}: HTTP {}", a.source, resp.status());
        }
        Box::new(resp.into_body().into_reader())
    } else {
        Box::new(std::fs::File::open(&a.source).with_context(|| format!("open {}", a.source))?)
    };
    let id = image::import::import(&store, src, &a.source, tag.as_ref(), &opts)?;
    println!("{id}");
    Ok(0)
}

pub fn save(root: &Path, a: SaveArgs) -> Result<i32> {
    let store = open(root)?;
    let format = image::archive::Format::parse(&a.format)?;
    let out: Box<dyn std::io::Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            bail!("refusing to write an archive to a terminal: use -o FILE or redirect standard output")
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let result = image::archive::save(&store, &a.images, format, out);
    if result.is_err() {
        // A half-written archive is worse than none.
        if let Some(p) = &a.output {
            let _ = std::fs::remove_file(p);
        }
    }
    result?;
    Ok(0)
}

pub fn load(root: &Path, a: LoadArgs) -> Result<i32> {
    let store = open(root)?;
    let loaded = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?;
            image::archive::load(&store, f)?
        }
        None => image::archive::load(&store, std::io::stdin().lock())?,
    };
    if !a.quiet {
        for l in loaded {
            match l.strip_prefix("ID: ") {
                Some(id) => println!("Loaded image ID: {id}"),
                None => println!("Loaded image: {l}"),
            }
        }
    }
    Ok(0)
}

fn config_of(store: &Store, id: &image::Digest) -> Result<ImageConfig> {
    Ok(ImageConfig::parse(&store.read_blob(id)?, &id.to_string())?)
}

pub fn inspect(root: &Path, a: InspectArgs) -> Result<i32> {
    let mut out = Vec::new();
    let mut failed = false;
    for name in &a.images {
        match inspect_value(root, name) {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("lbox: {e:#}");
                failed = true;
            }
        }
    }
    super::template::print_inspect(a.format.as_deref(), &out)?;
    Ok(if failed { 1 } else { 0 })
}

/// Docker's JSON description of an image.
pub fn inspect_value(root: &Path, name: &str) -> Result<serde_json::Value> {
    let store = open(root)?;
    let img = store.find(name)?;
    let cfg = config_of(&store, &img.id)?;
    let layers = store.image_layers(&img.id)?;
    let familiar = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|t| t.parse::<Reference>().map(|r| r.familiar()).unwrap_or(t.clone()))
            .collect()
    };
    Ok(serde_json::json!({
        "Id": img.id.to_string(),
        "RepoTags": familiar(&img.tags),
        "RepoDigests": familiar(&img.repo_digests),
        "Created": cfg.created,
        "Author": cfg.author.clone().unwrap_or_default(),
        "Config": cfg.config,
        "Architecture": cfg.architecture,
        "Variant": cfg.variant,
        "Os": cfg.os,
        "Size": img.size,
        "Manifest": { "Digest": img.manifest_digest.to_string(), "MediaType": img.manifest_media_type },
        "RootFS": { "Type": "layers", "Layers": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDir": store.lower_dirs(&img.id).unwrap_or_default().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":") }
        },
    }))
}

pub fn history(root: &Path, a: HistoryArgs) -> Result<i32> {
    let store = open(root)?;
    let img = store.find(&a.image)?;
    let cfg = config_of(&store, &img.id)?;
    let layers = store.image_layers(&img.id)?;
    let mut layer_sizes = layers.iter().map(|l| l.size);
    let mut entries: Vec<(String, i64, String, u64, String)> = Vec::new();
    for h in &cfg.history {
        let size = if h.empty_layer {
            0
        } else {
            layer_sizes.next().unwrap_or(0)
        };
        let created = h.created.as_deref().and_then(output::parse_time).unwrap_or(0);
        entries.push((
            "<missing>".into(),
            created,
            h.created_by.clone().unwrap_or_default(),
            size,
            h.comment.clone().unwrap_or_default(),
        ));
    }
    entries.reverse();
    if let Some(first) = entries.first_mut() {
        first.0 = if a.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        };
    }
    if a.quiet {
        entries.iter().for_each(|e| println!("{}", e.0));
        return Ok(0);
    }
    let mut t = table(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for (id, created, by, size, comment) in entries {
        let by = if a.no_trunc || by.chars().count() <= 45 {
            by
        } else {
            format!("{}…", by.chars().take(44).collect::<String>())
        };
        t.add_row(vec![id, output::ago(created), by, output::size(size), comment]);
    }
    print_table(&mut t);
    Ok(0)
}

pub fn prune(root: &Path, a: PruneArgs) -> Result<i32> {
    let store = open(root)?;
    let e = super::containers::open(root)?;
    let keep: Vec<image::Digest> = engine::prune::images_in_use(&e)?
        .iter()
        .filter_map(|i| i.parse().ok())
        .collect();
    let (removed, freed) = store.prune(a.all, &keep)?;
    for id in &removed {
        println!("Deleted: {id}");
    }
    println!("Total reclaimed space: {}", output::size(freed));
    Ok(0)
}

fn mounts_dir(root: &Path) -> PathBuf {
    root.join("mounts")
}

pub fn mount(root: &Path, a: MountArgs) -> Result<i32> {
    let store = open(root)?;
    let img = store.find(&a.image)?;
    let dir = mounts_dir(root).join(format!("{}-{}", img.id.short(), std::process::id()));
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    if let Err(e) = store.mount(
        &img.id,
        &merged,
        Some(image::overlay::Upper {
            dir: &upper,
            work: &work,
            volatile: false,
        }),
    ) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e.into());
    }
    println!("{}", merged.display());
    Ok(0)
}

pub fn unmount(root: &Path, a: UnmountArgs) -> Result<i32> {
    let merged = a
        .path
        .canonicalize()
        .with_context(|| format!("{} does not exist", a.path.display()))?;
    let dir = merged.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.parent() != Some(mounts_dir(root).canonicalize().unwrap_or_default().as_path()) {
        bail!("{} was not mounted by lbox image mount", a.path.display());
    }
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH)
        .with_context(|| format!("unmount {}", merged.display()))?;
    std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    Ok(0)
}
