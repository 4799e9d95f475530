//! `lbox build` end to end: the three front ends, the instructions, the cache, and malformed
//! files that must fail with file:line and leave nothing behind. Base images are made offline
//! (busybox-static); RUN steps run with --network none unless a test needs the default bridge.

mod common;

use std::io::{Read, Write};
use std::path::Path;

use common::engine::Engine;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
    }
}

fn context(e: &Engine, name: &str, files: &[(&str, &str)]) -> String {
    let dir = e.path(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    write(&dir, files);
    dir.to_string_lossy().into_owned()
}

fn config(e: &Engine, image: &str) -> serde_json::Value {
    let out = e.ok(&["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
    v[0]["Config"].clone()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("send");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn image_count(e: &Engine) -> usize {
    e.ok(&["images", "-a", "-q", "--no-trunc"]).lines().count()
}

#[test]
fn the_example_builds_from_app_lbox_and_dockerfile_and_answers_on_a_published_port() {
    let e = Engine::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/web");
    let ctx = e.path("web");
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&ctx)
        .status()
        .expect("cp");
    assert!(st.success());
    let ctx = ctx.to_string_lossy().into_owned();

    let out = e.ok(&["build", "--network", "none", "-t", "web", "-t", "web:v1", &ctx]);
    assert!(out.contains("STEP 6/6: BOX_START"), "{out}");
    assert!(out.contains("Successfully tagged web:v1"), "{out}");
    let id = e.ok(&["images", "-q", "--no-trunc", "web:v1"]);

    // Unchanged: every step comes from the cache and the image is the same.
    let again = e.ok(&["build", "--network", "none", "-t", "web", &ctx]);
    assert_eq!(again.matches("--> CACHED").count(), 5, "{again}");
    assert_eq!(e.ok(&["images", "-q", "--no-trunc", "web"]), id);

    // The Dockerfile says the same thing: the same steps, so the same image.
    let df = e.ok(&[
        "build",
        "--network",
        "none",
        "-q",
        "-f",
        &format!("{ctx}/Dockerfile"),
        "-t",
        "web-docker",
        &ctx,
    ]);
    assert_eq!(df, id, "app.lbox and Dockerfile give the same image");

    let c = config(&e, "web");
    assert_eq!(c["WorkingDir"], "/app");
    assert!(c["Env"].as_array().expect("env").iter().any(|v| v == "GREETING=hello"));
    assert_eq!(c["Cmd"][0], "httpd");

    // One source file changes: COPY and what follows run again, the steps before do not.
    std::fs::write(format!("{ctx}/www/index.html"), "changed\n").expect("write");
    let out = e.ok(&["build", "--network", "none", "-t", "web", &ctx]);
    assert_eq!(out.matches("--> CACHED").count(), 1, "only BOX_DIR is cached: {out}");
    assert!(out.contains("BOX_EXEC"), "{out}");

    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    e.ok(&["run", "-d", "--name", "site", "-p", &publish, "web"]);
    let mut body = String::new();
    e.eventually(10, "the web service", || {
        body = std::panic::catch_unwind(|| http_get(port, "/cgi-bin/hello")).unwrap_or_default();
        body.contains("hello from")
    });
    assert!(body.contains("(GET /cgi-bin/hello)"), "{body}");
    assert!(http_get(port, "/index.html").contains("changed"));
    assert!(
        !http_get(port, "/app.lbox").contains("BOX_BASE"),
        ".dockerignore keeps build files out"
    );

    // Built on its own (no cache; RUN on the default bridge network), the Dockerfile's image
    // behaves the same.
    let dockerfile = format!("{ctx}/Dockerfile");
    let df2 = e.ok(&["build", "--no-cache", "-q", "-f", &dockerfile, "-t", "web-docker", &ctx]);
    assert_ne!(df2, id, "a build of its own");
    let port2 = free_port();
    let publish2 = format!("127.0.0.1:{port2}:8080");
    e.ok(&["run", "-d", "--name", "site2", "-p", &publish2, "web-docker"]);
    let mut body2 = String::new();
    e.eventually(10, "the Dockerfile's web service", || {
        body2 = std::panic::catch_unwind(|| http_get(port2, "/cgi-bin/hello")).unwrap_or_default();
        body2.contains("hello from")
    });
    assert!(body2.contains("(GET /cgi-bin/hello)"), "{body2}");
    let page = |p: u16| {
        let r = http_get(p, "/index.html");
        r.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(r)
    };
    assert_eq!(page(port2), page(port));
    e.ok(&["rm", "-f", "site", "site2"]);
    e.assert_clean();
}

#[test]
fn dockerfile_instructions_reach_the_image() {
    let e = Engine::new();
    // An archive for ADD to unpack.
    let arch = e.path("arch");
    write(&arch, &[("inner/data.txt", "from the archive\n")]);
    let ctx = context(
        &e,
        "ctx",
        &[
            (
                "Dockerfile",
                r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hi
RUN mkdir -p /out && echo "$GREETING from the builder" > /out/made.txt
RUN <<EOF
echo heredoc > /out/heredoc.txt
EOF

FROM ${BASE} AS final
LABEL org.example.name="demo app" version=1
ENV APP_HOME=/srv/app \
    MODE=prod
WORKDIR $APP_HOME
COPY --from=builder /out/ ./built/
COPY --chown=user:wheel --chmod=640 src/*.txt ./
COPY <<EOF notes.md
written inline
EOF
ADD files.tar.gz /opt/
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD test -f /srv/app/a.txt
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
USER user
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo default"]

FROM final AS unused
RUN exit 1
"#,
            ),
            ("src/a.txt", "a\n"),
            ("src/b.txt", "b\n"),
            ("src/skip.log", "no\n"),
            ("secret.key", "never copied\n"),
            (".dockerignore", "*.key\n"),
        ],
    );
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&arch)
        .arg("-czf")
        .arg(format!("{ctx}/files.tar.gz"))
        .arg("inner")
        .status()
        .expect("tar");
    assert!(st.success());

    let out = e.ok(&[
        "build",
        "--network",
        "none",
        "--target",
        "final",
        "--build-arg",
        "GREETING=hey",
        "--label",
        "cli=yes",
        "-t",
        "demo",
        &ctx,
    ]);
    assert!(!out.contains("exit 1"), "the unused stage is not built: {out}");
    let script = "cd /srv/app && cat built/made.txt built/heredoc.txt notes.md /opt/inner/data.txt && \
                  stat -c '%U:%G %a' a.txt && ls && id -un && echo $MODE";
    let got = e.ok(&["run", "--rm", "demo", script]);
    let want = [
        "hey from the builder",
        "heredoc",
        "written inline",
        "from the archive",
        "user:wheel 640",
        "a.txt",
        "user",
        "prod",
    ];
    for w in want {
        assert!(got.contains(w), "{w:?} missing from {got}");
    }
    assert!(!got.contains("skip.log") && !got.contains("secret.key"), "{got}");
    assert_eq!(e.ok(&["run", "--rm", "demo"]), "default");

    let c = config(&e, "demo");
    assert_eq!(c["Labels"]["org.example.name"], "demo app");
    assert_eq!(c["Labels"]["cli"], "yes");
    assert!(c["ExposedPorts"].get("8080/tcp").is_some() && c["ExposedPorts"].get("53/udp").is_some());
    assert!(c["Volumes"].get("/data").is_some());
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(c["OnBuild"][0], "RUN echo child");
    assert_eq!(c["User"], "user");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));

    // A changed build argument runs the steps that can see it again.
    let out = e.ok(&[
        "build",
        "--network",
        "none",
        "--target",
        "builder",
        "--build-arg",
        "GREETING=yo",
        &ctx,
    ]);
    assert!(!out.contains("CACHED"), "{out}");
    // --no-cache runs everything.
    let out = e.ok(&["build", "--network", "none", "--no-cache", "--target", "builder", &ctx]);
    assert!(!out.contains("CACHED"), "{out}");
    e.assert_clean();
}

#[test]
fn a_boxfile_toml_builds() {
    let e = Engine::new();
    let ctx = context(
        &e,
        "py",
        &[
            (
                "boxfile.toml",
                r#"
[box]
name = "my-app"
version = "1.0.0"
base = "busybox"

[box.meta]
labels = { team = "backend" }

[[steps]]
name = "copy source code"
copy = { src = "./src", dst = "/app" }

[[steps]]
workdir = "/app"

[[steps]]
run = "echo built > stamp"

[[steps]]
env = { BUILD_ENV = "production" }

[run]
cmd = ["sh", "-c", "cat main.txt stamp; echo $BUILD_ENV $LOG_LEVEL; id -un"]
expose = [8000]
env = { LOG_LEVEL = "info" }
user = "user"

[limits]
memory = "256m"
pids = 100

[healthcheck]
cmd = "test -f /app/stamp"
interval = "30s"
retries = 3
"#,
            ),
            ("src/main.txt", "main\n"),
        ],
    );
    e.ok(&["build", "--network", "none", "-t", "pyapp", &ctx]);
    let out = e.ok(&["run", "--rm", "pyapp"]);
    assert_eq!(out, "main\nbuilt\nproduction info\nuser");
    let c = config(&e, "pyapp");
    assert_eq!(c["Labels"]["io.lbox.limits.memory"], "256m");
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "1.0.0");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /app/stamp"])
    );
    assert!(c["ExposedPorts"].get("8000/tcp").is_some());
}

#[test]
fn malformed_files_fail_at_their_line_and_leave_nothing_behind() {
    let e = Engine::new();
    let before = image_count(&e);
    let layers = || {
        std::fs::read_dir(e.root().join("images/layers"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let layers_before = layers();
    let cases: &[(&str, &str, &str)] = &[
        (
            "Dockerfile",
            "FROM busybox\nFOO bar\n",
            "Dockerfile:2: unknown instruction \"FOO\"",
        ),
        (
            "Dockerfile",
            "FROM busybox\nSHELL sh -c\n",
            "Dockerfile:2: SHELL requires",
        ),
        ("Dockerfile", "RUN true\n", "Dockerfile:1: no FROM"),
        (
            "Dockerfile",
            "FROM busybox\nCOPY ../etc/passwd /\n",
            "Dockerfile:2: ../etc/passwd: the path is outside",
        ),
        (
            "Dockerfile",
            "FROM busybox\nCOPY --from=nope /x /\n",
            "Dockerfile:2: --from=nope: no stage",
        ),
        (
            "Dockerfile",
            "FROM b AS a\nRUN true\nFROM a AS b\n",
            "Dockerfile:1: circular dependency",
        ),
        (
            "Dockerfile",
            "FROM busybox\nRUN true\nCMD [\"a\",\n",
            "Dockerfile:3: malformed JSON array",
        ),
        (
            "app.lbox",
            "BOX_BASE busybox\nBOX_START [\"httpd\", '-f']\n",
            "app.lbox:2: malformed JSON array",
        ),
        (
            "Dockerfile",
            "FROM busybox\nRUN true\nCOPY ../etc/passwd /\n",
            "Dockerfile:3: ../etc/passwd: the path is outside",
        ),
        (
            "Dockerfile",
            "FROM busybox\nRUN true\nCOPY --from=nope /x /\n",
            "Dockerfile:3: --from=nope: no stage",
        ),
        (
            "Dockerfile",
            "FROM --platform=linux/s390x busybox\nRUN true\n",
            "Dockerfile:1: FROM --platform=linux/s390x: only this machine's platform",
        ),
        (
            "app.lbox",
            "BOX_BASE busybox\nRUN true\n",
            "app.lbox:2: unknown instruction \"RUN\"",
        ),
        (
            "boxfile.toml",
            "[box]\nbase = \"busybox\"\n[[steps]]\nrum = \"x\"\n",
            "boxfile.toml:4:",
        ),
    ];
    for (i, (name, text, want)) in cases.iter().enumerate() {
        let ctx = context(&e, &format!("bad{i}"), &[(name, text)]);
        let o = e.lbox(&["build", "--network", "none", &ctx]);
        let err = common::stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{name}: {err}");
        assert!(err.contains(want), "{name}: {want:?} not in {err}");
    }
    // A failing RUN stops the build with its exit code and output.
    let ctx = context(
        &e,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo to-stdout; echo to-stderr >&2; exit 3\nRUN echo never\n",
        )],
    );
    let o = e.lbox(&["build", "--network", "none", &ctx]);
    assert_eq!(o.status.code(), Some(3));
    assert!(common::stdout(&o).contains("to-stdout") && !common::stdout(&o).contains("never"));
    assert!(common::stderr(&o).contains("to-stderr"));
    assert!(common::stderr(&o).contains("Dockerfile:2:"), "{}", common::stderr(&o));

    // Checked before any other lbox command: opening the store sweeps what dead builds left.
    let tmp = e.root().join("images/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    assert_eq!(layers(), layers_before, "layers left by failed builds");
    assert!(e.all_ids().is_empty(), "no build container is left");
    assert_eq!(image_count(&e), before, "images left by failed builds");
    e.assert_clean();
}

#[test]
fn add_downloads_a_url() {
    let e = Engine::new();
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\ndownload\n");
        }
    });
    let ctx = context(
        &e,
        "url",
        &[(
            "Dockerfile",
            &format!("FROM busybox\nADD http://127.0.0.1:{port}/files/page.txt /web/\nCMD [\"sh\", \"-c\", \"cat /web/page.txt; stat -c %a /web/page.txt\"]\n"),
        )],
    );
    e.ok(&["build", "--network", "none", "-t", "dl", &ctx]);
    assert_eq!(e.ok(&["run", "--rm", "dl"]), "download\n600");
    // The same content again: the step comes from the cache.
    let out = e.ok(&["build", "--network", "none", "-t", "dl", &ctx]);
    assert_eq!(out.matches("CACHED").count(), 2, "{out}");
}

#[test]
fn onbuild_triggers_run_in_the_child_build_and_quiet_builds_print_only_the_id() {
    let e = Engine::new();
    let parent = context(
        &e,
        "parent",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD COPY hello.txt /from-child/\n\
             ONBUILD RUN echo \"triggered by $(cat /from-child/hello.txt)\" > /onbuild.txt\n\
             RUN echo parent > /parent.txt\n",
        )],
    );
    e.ok(&["build", "--network", "none", "-t", "parent", &parent]);
    let o = e.lbox(&["run", "--rm", "parent", "test", "-e", "/onbuild.txt"]);
    assert_eq!(o.status.code(), Some(1), "triggers wait for a child build");
    let child = context(
        &e,
        "child",
        &[
            (
                "Dockerfile",
                "FROM parent\nRUN echo quiet-step-output\nCMD cat /onbuild.txt /parent.txt\n",
            ),
            ("hello.txt", "the child context\n"),
        ],
    );
    // -q prints the image ID and nothing else, not even the steps' output.
    let out = e.ok(&["build", "-q", "--network", "none", "-t", "child", &child]);
    assert!(out.starts_with("sha256:") && out.lines().count() == 1, "{out}");
    assert_eq!(
        e.ok(&["run", "--rm", "child"]),
        "triggered by the child context\nparent"
    );
    let c = config(&e, "child");
    assert!(
        c.get("OnBuild").is_none_or(|v| v.is_null()),
        "the child keeps no trigger: {c}"
    );
    assert_eq!(config(&e, "parent")["OnBuild"].as_array().map(Vec::len), Some(2));

    // A quiet build whose step fails shows that step's output, and its code.
    let bad = context(
        &e,
        "bad",
        &[("Dockerfile", "FROM busybox\nRUN echo the-reason >&2; exit 4\n")],
    );
    let o = e.lbox(&["build", "-q", "--network", "none", &bad]);
    assert_eq!(o.status.code(), Some(4));
    assert!(common::stderr(&o).contains("the-reason"), "{}", common::stderr(&o));

    // The container a RUN step runs in is listed only with --external.
    let slow = context(&e, "slow", &[("Dockerfile", "FROM busybox\nRUN sleep 3\n")]);
    let mut build = e
        .cmd(&["build", "-q", "--network", "none", &slow])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("build");
    e.eventually(20, "the build step's container", || {
        !e.ok(&["ps", "-a", "--external", "-q"]).is_empty()
    });
    assert_eq!(e.ok(&["ps", "-a", "-q"]), "", "ps without --external hides it");
    assert!(build.wait().expect("wait").success());
    e.assert_clean();
}

/// A base image with the host's Python (binary, the libraries it and its extension modules
/// load, the standard library and the wheels `venv` installs pip from) on busybox, and a small
/// wheel at /wheels, so `[python]` can make a venv and install a package without a network.
fn python_base(e: &Engine) {
    let rootfs = e.path("pyroot");
    common::engine::busybox_rootfs(&rootfs);
    let script = r#"set -e
r=$1
mkdir -p "$r/usr/bin" "$r/wheels"
cp /usr/bin/python3.11 "$r/usr/bin/" && ln -s python3.11 "$r/usr/bin/python3"
tar -C / -cf - --exclude=__pycache__ --exclude=usr/lib/python3.11/test --exclude=usr/lib/python3.11/idlelib \
  --exclude=usr/lib/python3.11/tkinter usr/lib/python3.11 usr/share/python-wheels | tar -C "$r" -xf -
for f in $(ldd /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so | awk '/=>/ {print $3} /^\t\/lib64/ {print $1}' | sort -u); do
  mkdir -p "$r$(dirname "$f")" && cp -L "$f" "$r$f"
done
python3 - "$r/wheels/hello_lbox-0.1-py3-none-any.whl" <<'PY'
import base64, hashlib, sys, zipfile
files = {
    "hello_lbox.py": 'def greet():\n    return "hello from a wheel"\n',
    "hello_lbox-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: hello-lbox\nVersion: 0.1\n",
    "hello_lbox-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: lbox-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, text in files.items():
        data = text.encode()
        z.writestr(name, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("hello_lbox-0.1.dist-info/RECORD,,")
    z.writestr("hello_lbox-0.1.dist-info/RECORD", "\n".join(record) + "\n")
PY
tar -C "$r" -cf "$2" .
"#;
    let tar = e.path("pyroot.tar");
    let o = std::process::Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&rootfs)
        .arg(&tar)
        .output()
        .expect("sh");
    assert!(o.status.success(), "python base: {}", common::stderr(&o));
    e.ok(&["import", "-q", tar.to_str().expect("utf8"), "pybase:1"]);
}

#[test]
fn a_boxfile_python_section_makes_a_venv_with_the_packages() {
    let e = Engine::new();
    python_base(&e);
    let ctx = context(
        &e,
        "pyctx",
        &[
            (
                "boxfile.toml",
                r#"[box]
name = "wheel-app"
base = "pybase:1"

[python]
packages = ["/wheels/hello_lbox-0.1-py3-none-any.whl"]

[[steps]]
copy = { src = "./app.py", dst = "/app/app.py" }

[run]
cmd = ["python", "/app/app.py"]
"#,
            ),
            (
                "app.py",
                "import os, sys\nimport hello_lbox\nprint(hello_lbox.greet(), sys.prefix, os.environ['VIRTUAL_ENV'])\n",
            ),
        ],
    );
    e.ok(&["build", "--network", "none", "-t", "wheel-app", &ctx]);
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", "wheel-app"]),
        "hello from a wheel /opt/venv /opt/venv"
    );
    // The package is in the venv, not in the system's Python.
    let o = e.lbox(&[
        "run",
        "--rm",
        "--network",
        "none",
        "wheel-app",
        "/usr/bin/python3.11",
        "-c",
        "import hello_lbox",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    // A rebuild is all cache: the venv step is not run again.
    let again = e.ok(&["build", "--network", "none", "-t", "wheel-app", &ctx]);
    let fresh = again.lines().filter(|l| l.starts_with("--> ") && !l.contains("CACHED"));
    assert_eq!(fresh.count(), 1, "only FROM's line is not CACHED: {again}");
    e.assert_clean();
}

/// The interface of the host's default route, if it has one (`/proc/net/route`).
fn default_route_interface() -> Option<String> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"00000000"))
        .map(|f| f[0].to_string())
}

#[test]
fn more_forms_scratch_stages_images_escape_and_the_app_lbox_shell_form() {
    let e = Engine::new();
    let ctx = context(
        &e,
        "forms",
        &[
            (
                "Dockerfile",
                "# escape=`\n\
                 FROM scratch AS files\n\
                 COPY --chmod=0755 tool.sh /tool.sh\n\
                 \n\
                 FROM --platform=$BUILDPLATFORM busybox\n\
                 ARG TARGETARCH\n\
                 RUN [\"/bin/sh\", \"-c\", \"echo exec-form $TARGETARCH > /exec.txt\"]\n\
                 SHELL [\"/bin/sh\", \"-ec\"]\n\
                 RUN echo shell-form > /shell.txt\n\
                 RUN --network=host ls /sys/class/net > /nets.txt\n\
                 COPY --from=files /tool.sh /usr/local/bin/tool\n\
                 COPY --from=busybox:latest /etc/passwd /copied-passwd\n\
                 ADD --chown=1000:10 --chmod=600 plain.txt /plain.txt\n\
                 ADD --chown=1000:10 owned.tar /unpacked/\n\
                 COPY *.txt /texts/\n\
                 RUN echo multi `\n    line > /ml.txt\n\
                 CMD cat /exec.txt /shell.txt /ml.txt; tool; stat -c '%u:%g %a' /plain.txt; \
                 cmp /copied-passwd /etc/passwd && echo same; ls /texts; stat -c '%u:%g' /unpacked/pkg /unpacked/pkg/in.txt\n",
            ),
            ("tool.sh", "#!/bin/sh\necho tool ran\n"),
            ("plain.txt", "plain\n"),
            ("docker-only.txt", "the .dockerignore would let this in\n"),
            (".dockerignore", "*.log\n"),
            (".lboxignore", "docker-only.txt\n"),
        ],
    );
    // An archive whose entries belong to 1234:2345: ADD --chown gives them its owner.
    write(&e.path("owned"), &[("pkg/in.txt", "inside\n")]);
    let st = std::process::Command::new("tar")
        .args(["--owner=1234", "--group=2345", "-C"])
        .arg(e.path("owned"))
        .arg("-cf")
        .arg(format!("{ctx}/owned.tar"))
        .arg("pkg")
        .status()
        .expect("tar");
    assert!(st.success());
    let iid = e.path("iid");
    let out = e.ok(&[
        "build",
        "--network",
        "none",
        "--iidfile",
        iid.to_str().expect("utf8"),
        "-t",
        "forms",
        &ctx,
    ]);
    let id = std::fs::read_to_string(&iid).expect("iidfile");
    assert_eq!(e.ok(&["images", "-q", "--no-trunc", "forms"]), id, "{out}");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(
        e.ok(&["run", "--rm", "forms"]),
        format!("exec-form {arch}\nshell-form\nmulti line\ntool ran\n1000:10 600\nsame\nplain.txt\n1000:10\n1000:10")
    );
    // RUN --network=host saw the host's interfaces (not only lo, as --network none would).
    if let Some(dev) = default_route_interface() {
        let nets = e.ok(&["run", "--rm", "forms", "cat", "/nets.txt"]);
        assert!(nets.lines().any(|l| l == dev), "{dev} not in {nets}");
    }
    let c = config(&e, "forms");
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(c["Cmd"][0], "/bin/sh", "a shell-form CMD runs with the SHELL");
    // The image's configuration as stored (the blob the image ID names): one history entry per
    // step, one diff_id per entry that made a layer.
    let blob = e
        .root()
        .join("images/blobs/sha256")
        .join(id.trim().trim_start_matches("sha256:"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&blob).expect("config blob")).expect("json");
    let layers = v["rootfs"]["diff_ids"].as_array().map(Vec::len).unwrap_or(0);
    let history = v["history"].as_array().cloned().unwrap_or_default();
    let made = history.iter().filter(|h| h["empty_layer"] != true).count();
    assert!(
        layers > 1 && layers == made,
        "{layers} layers, {made} history entries with one: {v}"
    );
    assert!(
        history
            .iter()
            .any(|h| h["created_by"].as_str().is_some_and(|t| t.contains("ADD --chown"))),
        "{history:?}"
    );
    let hist = e.ok(&["history", "--no-trunc", "forms"]);
    assert!(
        hist.contains("COPY *.txt /texts/") && hist.contains("lbox build"),
        "{hist}"
    );

    // app.lbox: BOX_BASE from a rootfs tarball in the context, BOX_START in the shell form.
    let app = context(
        &e,
        "tarball-app",
        &[
            (
                "app.lbox",
                "BOX_BASE rootfs.tar\nBOX_DIR /srv\nBOX_COPY hello.txt .\nBOX_ENV WHO=world\n\
             BOX_START echo \"hello $WHO from $(pwd): $(cat hello.txt)\"\n",
            ),
            ("hello.txt", "hi"),
        ],
    );
    std::fs::copy(e.path("busybox.tar"), format!("{app}/rootfs.tar")).expect("copy rootfs");
    e.ok(&["build", "--network", "none", "-t", "tarball-app", &app]);
    assert_eq!(e.ok(&["run", "--rm", "tarball-app"]), "hello world from /srv: hi");
    let again = e.ok(&["build", "--network", "none", "-t", "tarball-app", &app]);
    assert!(
        again.matches("CACHED").count() >= 4,
        "the tarball is imported once: {again}"
    );

    // `--pull` alone is a flag, not a policy eating the context; a foreign platform is refused.
    let bare = context(&e, "pull", &[("Dockerfile", "FROM busybox\nCMD echo pulled\n")]);
    let o = e.lbox(&["build", "--pull=never", "--network", "none", "-t", "p", &bare]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let err = e.fails(&["build", "--platform", "linux/s390x", &bare], 125);
    assert!(err.contains("only this machine's platform"), "{err}");
    e.assert_clean();
}
