// SPDX-License-Identifier: GPL-2.0

//! Locking for state shared with hard-interrupt context.
//!
//! 6.12's `kernel::sync::SpinLock` takes a plain `spin_lock()`, which is wrong
//! for data a virtqueue callback (hard IRQ) or an irq_chip callback (under the
//! irq descriptor's raw lock) also touches. [`SpinLockIrq`] is a raw spinlock
//! taken with interrupts saved and disabled; [`WaitQueue`] lets a task sleep,
//! killably, until a condition guarded by such a lock holds.
//!
//! C headers: `include/linux/spinlock.h`, `include/linux/wait.h`.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use kernel::init::PinInit;
use kernel::prelude::*;
use kernel::types::Opaque;

use super::bindings;

/// A lockdep class: one per place a lock is created, so lockdep can tell
/// locks of different roles apart.
pub(crate) struct LockClassKey(Opaque<bindings::lock_class_key>);

// SAFETY: lockdep only uses the key's address and its own fields, under its
// own locking.
unsafe impl Sync for LockClassKey {}

impl LockClassKey {
    /// A key for a `static` (lockdep wants keys in static memory).
    pub(crate) const fn new() -> Self {
        // SAFETY: an all-zero `lock_class_key` is what a static C key is.
        LockClassKey(Opaque::new(unsafe { core::mem::zeroed() }))
    }

    pub(crate) fn as_ptr(&'static self) -> *mut bindings::lock_class_key {
        self.0.get()
    }
}

/// A `&'static` [`LockClassKey`] unique to the place it is written.
macro_rules! lock_class {
    () => {{
        static KEY: $crate::sync::LockClassKey = $crate::sync::LockClassKey::new();
        &KEY
    }};
}
pub(crate) use lock_class;

/// A raw spinlock taken with interrupts disabled, guarding a `T`.
///
/// # Invariants
///
/// `lock` was initialised in place and the value never moves (it is pinned).
/// `data` is only accessed through a [`SpinLockIrqGuard`], i.e. with `lock`
/// held.
#[pin_data]
pub(crate) struct SpinLockIrq<T> {
    #[pin]
    lock: Opaque<bindings::raw_spinlock_t>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serializes all access to `data`, so sharing the lock
// between threads and interrupt context is sound when `T` can be sent.
unsafe impl<T: Send> Sync for SpinLockIrq<T> {}
// SAFETY: moving the owner to another thread moves `T` with it.
unsafe impl<T: Send> Send for SpinLockIrq<T> {}

impl<T> SpinLockIrq<T> {
    /// A lock around `data`; `name` and `key` identify it to lockdep.
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: &'static LockClassKey,
    ) -> impl PinInit<Self> {
        pin_init!(SpinLockIrq {
            // SAFETY: `p` points to memory for the lock, pinned where it
            // will stay; the name and key are 'static.
            lock <- Opaque::ffi_init(|p| unsafe {
                bindings::vgpio_raw_spin_lock_init(p, name.as_char_ptr(), key.as_ptr())
            }),
            data: UnsafeCell::new(data),
        })
    }

    /// Take the lock, disabling interrupts on this CPU until the guard drops.
    pub(crate) fn lock(&self) -> SpinLockIrqGuard<'_, T> {
        // SAFETY: the lock was initialised (type invariant).
        let flags = unsafe { bindings::vgpio_raw_spin_lock_irqsave(self.lock.get()) };
        SpinLockIrqGuard { lock: self, flags }
    }
}

/// Proof that a [`SpinLockIrq`] is held; unlocks when dropped.
///
/// # Invariants
///
/// The lock is held, taken with `vgpio_raw_spin_lock_irqsave`, which
/// returned `flags`.
pub(crate) struct SpinLockIrqGuard<'a, T> {
    lock: &'a SpinLockIrq<T>,
    flags: kernel::ffi::c_ulong,
}

impl<T> Deref for SpinLockIrqGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the lock is held (type invariant), so no one else accesses
        // `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for SpinLockIrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SpinLockIrqGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the lock is held with these flags (type invariant).
        unsafe { bindings::vgpio_raw_spin_unlock_irqrestore(self.lock.lock.get(), self.flags) };
    }
}

/// A wait queue for tasks waiting on a condition guarded by a [`SpinLockIrq`].
///
/// # Invariants
///
/// `wq` was initialised in place and is pinned.
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    wq: Opaque<bindings::wait_queue_head>,
}

// SAFETY: wait queues are designed to be shared between tasks and interrupt
// context; they have their own lock.
unsafe impl Sync for WaitQueue {}
// SAFETY: see `Sync`.
unsafe impl Send for WaitQueue {}

impl WaitQueue {
    pub(crate) fn new(name: &'static CStr, key: &'static LockClassKey) -> impl PinInit<Self> {
        pin_init!(WaitQueue {
            // SAFETY: `p` points to pinned memory for the head; name and key
            // are 'static.
            wq <- Opaque::ffi_init(|p| unsafe {
                bindings::vgpio_init_waitqueue_head(p, name.as_char_ptr(), key.as_ptr())
            }),
        })
    }

    /// Sleep until [`WaitQueue::wake_all`] (or a spurious wake-up), with the
    /// guard's lock released meanwhile. The caller re-checks its condition.
    /// Fails with `ERESTARTSYS` if the task got a fatal signal.
    pub(crate) fn wait_killable<T>(&self, guard: &mut SpinLockIrqGuard<'_, T>) -> Result {
        // SAFETY: the queue is initialised (type invariant); the guard holds
        // its lock taken with `guard.flags`, which the helper updates when it
        // retakes the lock, so the guard's invariant holds again on return.
        let r = unsafe {
            bindings::vgpio_wait_killable_unlocked(
                self.wq.get(),
                guard.lock.lock.get(),
                &mut guard.flags,
            )
        };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(())
    }

    /// Wake every waiter. Callable from any context.
    pub(crate) fn wake_all(&self) {
        // SAFETY: the queue is initialised (type invariant).
        unsafe { bindings::vgpio_wake_up_all(self.wq.get()) };
    }
}
