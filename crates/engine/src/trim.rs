//! Keeping a monitor small. A monitor lives as long as its container but, once the container
//! runs, only needs its event loop: the code it ran to start the container (the runtime,
//! seccomp, SQLite, …) stays mapped and counted in its resident memory. Dropping the clean,
//! read-only file pages from our page tables costs nothing (they stay in the page cache and come
//! back on use), and malloc_trim returns freed heap.

/// Drop our resident pages that can be refaulted from their files: mappings with no dirty or
/// anonymous pages (text and read-only data; never .data, .bss or relocated RELRO pages, which
/// hold state a refault would lose).
pub fn trim() {
    // Safety: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize, bool)> = None;
    let mut dirty = false;
    let mut ranges = Vec::new();
    let flush = |cur: Option<(usize, usize, bool)>, dirty: bool, ranges: &mut Vec<(usize, usize)>| {
        if let Some((start, end, droppable)) = cur {
            if droppable && !dirty {
                ranges.push((start, end));
            }
        }
    };
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            flush(current.take(), dirty, &mut ranges);
            dirty = false;
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
                continue;
            };
            let mut f = line.split_whitespace();
            let perms = f.nth(1).unwrap_or("");
            let path = line.split_whitespace().nth(5).unwrap_or("");
            // File-backed, private, not writable: text and read-only data.
            let droppable = path.starts_with('/') && perms.ends_with('p') && !perms.contains('w');
            current = Some((start, end, droppable));
        } else if let Some(v) = line
            .strip_prefix("Private_Dirty:")
            .or_else(|| line.strip_prefix("Anonymous:"))
        {
            if v.trim().trim_end_matches("kB").trim() != "0" {
                dirty = true;
            }
        }
    }
    flush(current.take(), dirty, &mut ranges);
    for (start, end) in ranges {
        // Safety: the range is a clean, read-only file mapping of ours; MADV_DONTNEED only
        // unmaps its pages, which fault back in from the file unchanged.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}
