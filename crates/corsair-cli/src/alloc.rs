//! The `corsair` binary's memory allocator: jemalloc, told to give freed pages back to the
//! system about a second after they are freed.
//!
//! An idle plain HTTP/1.1 proxy connection holds 16 bytes, but while it served a request it held hyper's
//! buffers (8 and 16 KiB). glibc's malloc frees those into its heaps between the small blocks
//! that stay live, and keeps the pages: 10,000 connections released after one request each
//! left the process 84 to 157 MiB larger. jemalloc allocates each size class from slabs of its
//! own, so the buffers' pages empty out whole, and its decay returns them (BENCHMARKS.md has
//! the figures). Only the binary chooses an allocator: the `corsair` library and `corsair_cli`
//! leave it to whoever links them.
//!
//! Its thread caches are set when jemalloc is built (`.cargo/config.toml`, through
//! `JEMALLOC_SYS_WITH_MALLOC_CONF`): at least 64 blocks of each small size (jemalloc's default
//! keeps 20 of its larger ones) and one tidying step per 2 MiB allocated instead of per
//! 64 KiB. With 256 connections busy, each request in flight holds the 8 KiB buffer hyper read
//! it into (hyper takes a fresh one for its next read), and the default caches sent those
//! buffers back to the arena and took new slabs from it about once a request: about 2,400
//! instructions a request (`scripts/bench-proxy-cache.sh`, BENCHMARKS.md). The memory of
//! 10,000 idle connections stayed the same (`scripts/bench-proxy.sh`). The sizes from 4 to
//! 16 KiB (hyper's buffers among them) come from slabs of 64 KiB, several blocks each, where
//! jemalloc's own are one or two blocks (an 8 KiB block is a slab of its own): each batch the
//! thread cache took or gave back was a slab taken from or given back to the arena per block.
//! With 256 connections busy, jemalloc's own work a request went from about 3,000 instructions
//! to 1,600 (1,100 with 10 connections; BENCHMARKS.md, twelfth pass), and the memory of 10,000
//! idle connections after a request each stayed within that of jemalloc's own slabs. A build without that file (`cargo install` from a registry)
//! gets jemalloc's defaults: the same proxy, slower with many connections busy.
//!
//! jemalloc takes the page size of the machine that builds it: a binary built on a 4 KiB-page
//! machine for a kernel with larger pages (16 or 64 KiB, some aarch64 distributions) stops at
//! its first allocation. Build on the target, or set `JEMALLOC_SYS_WITH_LG_PAGE=16` (64 KiB) for
//! such a cross-build.

#[cfg(target_os = "linux")]
#[global_allocator]
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long freed pages stay in the process for reuse before they go back to the system.
/// jemalloc's default is 10 s; shorter returns the memory of a burst sooner, zero would cost
/// a system call at nearly every free of a page.
#[cfg(target_os = "linux")]
const DECAY_MS: isize = 1000;

/// Gives freed pages back about [`DECAY_MS`] after they are freed, from jemalloc's background
/// thread, so that memory also goes back while the proxy is quiet (without it, jemalloc purges
/// only when it is called). Called once at the start of `corsair proxy`, before its runtime
/// starts threads. A failure is printed and leaves jemalloc's defaults: memory then goes back
/// later, nothing else changes.
pub fn return_freed_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = configure() {
        eprintln!("WARNING: memory allocator: cannot set its decay ({e}); freed memory goes back to the system later");
    }
}

#[cfg(target_os = "linux")]
fn configure() -> tikv_jemalloc_ctl::Result<()> {
    use tikv_jemalloc_ctl::{background_thread, Access, AsName};
    // `arenas.*`: the arenas created from now on (one per thread, as threads first allocate);
    // `arena.0.*`: the one the main thread already uses. Muzzy pages (MADV_FREE) would still
    // count in the resident memory until the kernel is short of it: none, the default, stated.
    for name in [&b"arenas.dirty_decay_ms\0"[..], b"arena.0.dirty_decay_ms\0"] {
        name.name().write(DECAY_MS)?;
    }
    for name in [&b"arenas.muzzy_decay_ms\0"[..], b"arena.0.muzzy_decay_ms\0"] {
        name.name().write(0_isize)?;
    }
    background_thread::write(true)
}
