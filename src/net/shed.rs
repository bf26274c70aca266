//! Shedding the stalest connections when a worker nears its connection cap, so that clients
//! that send nothing (slow heads, slow bodies, idle TLS, from as many addresses as an attacker
//! likes) cannot hold every slot: per-address caps alone cannot stop that. Past the threshold,
//! each new connection closes the open one that has gone longest without sending a byte. A
//! normal client then gets in at once, and an attacker must keep sending to keep a slot, which
//! is what costs it. (One registry per worker thread: no lock, and actix-server's cap is per
//! worker too.)

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::telemetry::Throttle;

/// The open connections of one worker.
#[derive(Clone)]
pub(super) struct Slots {
    inner: Rc<RefCell<Inner>>,
    /// Past this many open connections, each new one sheds the stalest.
    threshold: usize,
}

#[derive(Default)]
struct Inner {
    next: u64,
    open: HashMap<u64, Rc<Slot>>,
}

/// One connection's standing: when it last sent something, and whether it was told to go.
pub(super) struct Slot {
    last_sent: Cell<Instant>,
    shed: Cell<bool>,
    /// Woken on shedding, wherever the connection waits (its read, its first byte).
    waker: Cell<Option<Waker>>,
    notify: tokio::sync::Notify,
}

/// A connection's place in the registry, given back when the connection closes.
pub(super) struct Held {
    inner: Rc<RefCell<Inner>>,
    id: u64,
    pub(super) slot: Rc<Slot>,
}

impl Slots {
    /// For a worker capped at `per_worker` connections by actix-server: shedding starts a little
    /// before the cap, so that actix-server never stops accepting (new clients would then wait in
    /// the listen queue, where nothing can help them).
    pub(super) fn new(per_worker: usize) -> Self {
        let reserve = (per_worker / 16).max(1);
        Self {
            inner: Rc::default(),
            threshold: per_worker.saturating_sub(reserve).max(1),
        }
    }

    /// Registers a new connection, shedding the stalest one first if the worker is near its cap.
    pub(super) fn admit(&self) -> Held {
        let mut inner = self.inner.borrow_mut();
        if inner.open.len() >= self.threshold {
            let stalest = inner
                .open
                .values()
                .filter(|slot| !slot.shed.get())
                .min_by_key(|slot| slot.last_sent.get());
            if let Some(stalest) = stalest {
                let idle = stalest.last_sent.get().elapsed();
                stalest.shed();
                log_shedding(inner.open.len(), idle);
            }
        }
        let id = inner.next;
        inner.next += 1;
        let slot = Rc::new(Slot {
            last_sent: Cell::new(Instant::now()),
            shed: Cell::new(false),
            waker: Cell::new(None),
            notify: tokio::sync::Notify::new(),
        });
        inner.open.insert(id, slot.clone());
        Held {
            inner: self.inner.clone(),
            id,
            slot,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.inner.borrow_mut().open.remove(&self.id);
    }
}

impl Slot {
    fn shed(&self) {
        self.shed.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        self.notify.notify_one();
    }

    /// True once this connection was chosen to make room.
    pub(super) fn is_shed(&self) -> bool {
        self.shed.get()
    }

    /// The client sent something.
    pub(super) fn sent(&self) {
        self.last_sent.set(Instant::now());
    }

    /// Wake `waker` if this connection is shed while it waits.
    pub(super) fn wake_on_shed(&self, waker: &Waker) {
        self.waker.set(Some(waker.clone()));
    }

    /// Resolves when this connection is shed.
    pub(super) async fn shed_notified(&self) {
        if !self.is_shed() {
            self.notify.notified().await;
        }
    }
}

/// One line a minute while shedding lasts, with how many connections were shed in between.
fn log_shedding(open: usize, idle: Duration) {
    static LOG: Throttle = Throttle::per_minute();
    if let Some(also) = LOG.admit() {
        tracing::warn!(
            open,
            also,
            "a worker is near its connection cap: closing the connection that sent nothing for \
             longest ({} ms) to make room for a new one (`also` = how many more since the last \
             line); many clients that hold connections without sending look like an attack",
            idle.as_millis()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_the_cap_a_new_connection_sheds_the_one_silent_longest() {
        let slots = Slots::new(4); // threshold 3
        let a = slots.admit();
        let b = slots.admit();
        let c = slots.admit();
        b.slot.sent();
        a.slot.sent(); // c is now the one silent longest
        let d = slots.admit();
        assert!(c.slot.is_shed(), "the stalest goes");
        assert!(!a.slot.is_shed() && !b.slot.is_shed() && !d.slot.is_shed());
        drop(c);
        let _e = slots.admit();
        assert!(b.slot.is_shed(), "then the next stalest");
        assert_eq!(slots.inner.borrow().open.len(), 4);
        drop((a, b, d));
        assert_eq!(slots.inner.borrow().open.len(), 1, "closed ones leave");
    }
}
