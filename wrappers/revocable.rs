// SPDX-License-Identifier: GPL-2.0

//! Objects that can be revoked while others still hold handles to them:
//! 7.x's `kernel::revocable::Revocable`. 6.12's crate has none: here the
//! same type, with the part of its API the driver uses (`new`,
//! `try_access_with`, `try_access_with_guard`, `revoke`), on the same RCU
//! scheme.

#[cfg(vgpio_k7)]
pub(crate) use kernel::revocable::Revocable;

#[cfg(vgpio_k612)]
pub(crate) use k612::Revocable;

#[cfg(vgpio_k612)]
mod k612 {
    use core::cell::UnsafeCell;
    use core::mem::ManuallyDrop;
    use kernel::prelude::*;

    use super::super::sync::atomic::{Acquire, Atomic, Full};
    use super::super::sync::rcu;

    /// A `T` that can be revoked (dropped) while the `Revocable` lives on:
    /// each access is an RCU read-side section that finds it available;
    /// revocation marks it unavailable, waits for a grace period (so no
    /// access is still running), then drops it.
    ///
    /// # Invariants
    ///
    /// While `available`, `data` holds a `T` that has not been dropped;
    /// once it is clear, `data` has been (or is being, by the one
    /// `revoke` that cleared it) dropped, and is never read again.
    #[pin_data(PinnedDrop)]
    pub(crate) struct Revocable<T> {
        available: Atomic<bool>,
        data: UnsafeCell<ManuallyDrop<T>>,
    }

    // SAFETY: as 7.x's: `revoke` may drop the `T` on another thread.
    unsafe impl<T: Send> Send for Revocable<T> {}
    // SAFETY: as 7.x's: accesses share `&T` across threads, and `revoke`
    // may drop the `T` on any of them.
    unsafe impl<T: Sync + Send> Sync for Revocable<T> {}

    impl<T> Revocable<T> {
        /// `data`, available.
        pub(crate) fn new(data: T) -> impl PinInit<Self> {
            // INVARIANT: available, with a live `T`.
            pin_init!(Self {
                available: Atomic::new(true),
                data: UnsafeCell::new(ManuallyDrop::new(data)),
            })
        }

        /// Run `f` on the `T` if it has not been revoked, in an RCU
        /// read-side section (`f` must not sleep).
        pub(crate) fn try_access_with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
            let _rcu = rcu::read_lock();
            if !self.available.load(Acquire) {
                return None;
            }
            // SAFETY: available, so the `T` is live (type invariant), and
            // it stays live for this read-side section: `revoke` drops it
            // only after a grace period that began after it cleared
            // `available`.
            Some(f(unsafe { &*self.data.get() }))
        }

        /// The `T`, if it has not been revoked, for as long as the caller's
        /// RCU read-side section (`guard`) lasts.
        #[inline]
        pub(crate) fn try_access_with_guard<'a>(&'a self, _guard: &'a rcu::Guard) -> Option<&'a T> {
            if !self.available.load(Acquire) {
                return None;
            }
            // SAFETY: available, so the `T` is live (type invariant), and
            // it stays live while `guard`'s read-side section lasts, which
            // the returned borrow cannot outlive: `revoke` drops it only
            // after a grace period that began after it cleared `available`.
            Some(unsafe { &*self.data.get() })
        }

        /// Make the `T` unavailable, wait until no access to it is still
        /// running, and drop it. True if this call revoked it (false if it
        /// was revoked already). Sleeps.
        pub(crate) fn revoke(&self) -> bool {
            if !self.available.xchg(false, Full) {
                return false;
            }
            rcu::synchronize_rcu();
            // SAFETY: this call cleared `available` (only one can), so the
            // `T` is live and nobody else drops it; every access that found
            // it available has ended (the grace period) and later ones find
            // it unavailable, so nothing refers to it.
            unsafe { ManuallyDrop::drop(&mut *self.data.get()) };
            true
        }
    }

    #[pinned_drop]
    impl<T> PinnedDrop for Revocable<T> {
        fn drop(self: Pin<&mut Self>) {
            // SAFETY: only the fields are touched, and none is moved out.
            let this = unsafe { self.get_unchecked_mut() };
            if this.available.load(Acquire) {
                // SAFETY: available, so live (type invariant); `&mut self`
                // means no access is running.
                unsafe { ManuallyDrop::drop(this.data.get_mut()) };
            }
        }
    }
}
