//! Idle client connections held outside any task: each worker's park.
//!
//! A connection waiting in a task of its own costs that task (512 bytes with tokio's header)
//! and its socket's registration with tokio (256 bytes), about 0.8 KiB, for as long as the
//! client leaves it idle. nginx keeps an idle connection in its preallocated connection table
//! and an epoll registration, nothing more. So a connection silent for a while (a new one
//! for [`conn::FIRST_BYTES_IN_TASK`], a kept-alive one once hyper's state is released) is
//! parked here: its socket leaves tokio, is registered with the worker's own epoll instance
//! (through mio), and only the socket and its place in the open count stay, in a slab entry of
//! 16 bytes (the slab keeps the size of its largest occupancy until the proxy stops). When the
//! socket has bytes (or is closed by the client), the worker's park task takes it out and
//! gives it a task again, which serves it as a woken connection.
//!
//! The park's epoll instance is itself registered with the worker's event loop (its file
//! descriptor is readable when a parked socket is), so the park costs no thread and no timer.
//! Parking and waking each cost two `epoll_ctl` calls (out of one instance, into the other);
//! a connection is parked only after an idle period (250 ms at least), so a busy connection
//! never pays them. Adding to an epoll instance that another one watches takes a lock of the
//! kernel's shared by the whole machine (its check for loops between epoll instances), so
//! parks on all workers go one at a time: a few microseconds each, once per idle period of a
//! connection.
//!
//! When the proxy stops, the park task closes every parked connection (they carry no request)
//! and ends.

use std::cell::OnceCell;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{conn, Open, State};

/// Events taken from the park's epoll instance at a time.
const EVENTS: usize = 256;

thread_local! {
    /// This worker's park (none on a thread that is no worker, or when it could not be made).
    static PARK: OnceCell<Arc<Park>> = const { OnceCell::new() };
}

/// How a woken connection is served again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resume {
    /// It has sent nothing yet: its first bytes decide its protocol (and TLS, if served).
    Fresh,
    /// A plain HTTP/1.1 connection kept alive between requests: HTTP/1.1 again, whatever the
    /// bytes.
    Http1,
}

/// One worker's parked connections, and its epoll instance's registry.
pub(super) struct Park {
    registry: mio::Registry,
    parked: Mutex<Parked>,
}

struct Parked {
    sockets: Slab<Sleeper>,
    /// The proxy is stopping: nothing more is parked.
    closed: bool,
}

/// A parked connection: the socket (out of tokio), its place in the open count, and how it
/// resumes.
struct Sleeper {
    tcp: std::net::TcpStream,
    open: Open,
    resume: Resume,
}

/// Makes the current worker's park and starts its task, which wakes parked connections on
/// this worker until `stop` changes. Without a park (no epoll instance could be made: out of
/// file descriptors), idle connections wait in their tasks, as they would anyway.
pub(super) fn start(state: &Arc<State>, stop: &watch::Receiver<()>) -> io::Result<()> {
    let poll = mio::Poll::new()?;
    let park = Arc::new(Park {
        registry: poll.registry().try_clone()?,
        parked: Mutex::new(Parked {
            sockets: Slab::new(),
            closed: false,
        }),
    });
    // tokio 1.54 deprecates its safe constructors because a type may report a different file
    // descriptor later, or close it while registered; a `mio::Poll` owns its epoll descriptor
    // for its whole life and never changes it, which is the condition the unsafe `register`
    // asks of its caller (and this crate forbids `unsafe`).
    #[allow(deprecated)]
    let poll = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE)?;
    PARK.with(|p| p.set(park.clone()))
        .map_err(|_| io::Error::other("this worker already has a park"))?;
    tokio::spawn(wake(poll, park, state.clone(), stop.clone()));
    Ok(())
}

/// Parks `tcp`, counted idle in `state`'s metrics until it is woken or closed. When it cannot
/// be parked here (no park on this thread, the proxy stopping, or the registration refused),
/// the socket and its guard come back, to wait in their task.
pub(super) fn park(
    open: Open,
    tcp: TcpStream,
    resume: Resume,
    state: &State,
) -> Option<(Open, TcpStream)> {
    let Some(park) = PARK.with(|p| p.get().cloned()) else {
        return Some((open, tcp));
    };
    let mut parked = park.lock();
    if parked.closed {
        return Some((open, tcp));
    }
    // Out of tokio's epoll instance, into the park's. Should the socket not come out (never
    // seen: it is a plain nonblocking socket), it is closed; it carries no request.
    let tcp = tcp.into_std().ok()?;
    let entry = parked.sockets.vacant_entry();
    let fd = tcp.as_raw_fd();
    if park
        .registry
        .register(&mut SourceFd(&fd), Token(entry.key()), Interest::READABLE)
        .is_err()
    {
        drop(parked);
        return TcpStream::from_std(tcp).ok().map(|tcp| (open, tcp));
    }
    entry.insert(Sleeper { tcp, open, resume });
    state.metrics.parked_one();
    None
}

impl Park {
    fn lock(&self) -> std::sync::MutexGuard<'_, Parked> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the connection at `key` out of the park and gives it a task again.
    fn wake(&self, key: usize, state: &Arc<State>, stop: &watch::Receiver<()>) {
        let sleeper = {
            let mut parked = self.lock();
            let Some(sleeper) = parked.sockets.get(key) else {
                return;
            };
            // Out of the park's epoll instance before its key can be taken again; one that
            // will not come out (never seen) is closed, so that no event of it can name the
            // key's next holder.
            let out = self
                .registry
                .deregister(&mut SourceFd(&sleeper.tcp.as_raw_fd()));
            let sleeper = parked.sockets.remove(key);
            out.is_ok().then_some(sleeper)
        };
        state.metrics.unparked(1);
        let Some(Sleeper { tcp, open, resume }) = sleeper else {
            return;
        };
        // Back into tokio's; a socket tokio refuses (out of memory) is closed.
        if let Ok(tcp) = TcpStream::from_std(tcp) {
            tokio::spawn(conn::connection(
                open,
                state.clone(),
                tcp,
                stop.clone(),
                resume,
            ));
        }
    }

    /// Closes every parked connection; nothing is parked afterwards.
    fn close(&self, state: &State) {
        let sockets = {
            let mut parked = self.lock();
            parked.closed = true;
            std::mem::take(&mut parked.sockets)
        };
        state.metrics.unparked(sockets.len());
        drop(sockets);
    }
}

/// The park's task: waits for its epoll instance to have events, wakes the connections they
/// name, until `stop` changes (or the instance fails, which nothing here should cause); then
/// closes the connections still parked, and nothing more is parked on this worker.
async fn wake(
    mut poll: AsyncFd<mio::Poll>,
    park: Arc<Park>,
    state: Arc<State>,
    mut stop: watch::Receiver<()>,
) {
    let mut events = Events::with_capacity(EVENTS);
    let failed = loop {
        let mut ready = tokio::select! {
            biased;
            _ = stop.changed() => break None,
            ready = poll.readable_mut() => match ready {
                Ok(ready) => ready,
                Err(e) => break Some(e),
            },
        };
        // The instance is drained until it has nothing left, which clears its readiness:
        // tokio reports it again only once a parked socket becomes ready after that.
        let taken = ready.try_io(|poll| {
            poll.get_mut().poll(&mut events, Some(Duration::ZERO))?;
            if events.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        match taken {
            Ok(Ok(())) => {
                for event in &events {
                    park.wake(event.token().0, &state, &stop);
                }
                // A full batch may have more behind it: the worker's other tasks go first.
                if events.iter().count() == EVENTS {
                    tokio::task::yield_now().await;
                }
            }
            Ok(Err(e)) if e.kind() != io::ErrorKind::Interrupted => break Some(e),
            // Drained (its readiness cleared), or interrupted: wait again.
            _ => {}
        }
    };
    if let Some(e) = failed {
        eprintln!("corsair proxy: a worker's park failed ({e}): its idle connections are closed, and later ones wait in their tasks");
    }
    park.close(&state);
}
