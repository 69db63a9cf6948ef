// SPDX-License-Identifier: GPL-2.0

//! Synchronization on Linux 6.12, whose kernel crate has too little of it.
//!
//! 6.12's `kernel::sync::SpinLock` takes a plain `spin_lock()`, which is wrong
//! for data a virtqueue callback (hard IRQ) or an irq_chip callback (under the
//! irq descriptor's raw lock) also touches, and its `CondVar` only works with
//! its own locks. [`SpinLockIrq`] is a `spinlock_t` and [`RawSpinLockIrq`] a
//! `raw_spinlock_t`, both taken with interrupts saved and disabled;
//! [`WaitQueue`] (as [`CondVar`]), [`wait_var_killable_then`] and `sleep_then`
//! (for `super::sleep_killable_then`) let a task sleep until a condition
//! guarded by a [`SpinLockIrq`] holds; [`rcu`], [`Moment`],
//! [`might_sleep`]. The names and signatures are those of 7.x's kernel crate
//! (and of `sync_k7.rs`, which uses it), so the driver reads the same on both.
//!
//! C headers: `include/linux/spinlock.h`, `include/linux/wait.h`.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use kernel::prelude::*;
use kernel::types::Opaque;

use crate::bindings;

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

/// A kind of C spinlock that [`IrqLock`] can wrap.
///
/// # Safety
///
/// `init` must initialise the lock at `p`; `lock_irqsave` must take it with
/// local interrupts saved and disabled and return the saved flags;
/// `unlock_irqrestore` must release a lock taken that way.
pub(crate) unsafe trait LockKind {
    /// The C lock type.
    type State;

    /// # Safety
    ///
    /// `p` points to memory for a lock that stays where it is.
    unsafe fn init(p: *mut Self::State, name: &'static CStr, key: &'static LockClassKey);

    /// # Safety
    ///
    /// `p` points to an initialised lock.
    unsafe fn lock_irqsave(p: *mut Self::State) -> kernel::ffi::c_ulong;

    /// # Safety
    ///
    /// `p` points to a lock the caller took with `lock_irqsave`, which
    /// returned `flags`.
    unsafe fn unlock_irqrestore(p: *mut Self::State, flags: kernel::ffi::c_ulong);
}

/// `raw_spinlock_t`: never sleeps, not even on PREEMPT_RT. Only for state
/// that irq_chip callbacks touch under the irq descriptor's raw lock; nothing
/// that takes a `spinlock_t` (a wait queue, an allocation) may run under it.
pub(crate) struct RawKind;

// SAFETY: the helpers are raw_spin_lock_init, raw_spin_lock_irqsave and
// raw_spin_unlock_irqrestore.
unsafe impl LockKind for RawKind {
    type State = bindings::raw_spinlock_t;

    unsafe fn init(p: *mut Self::State, name: &'static CStr, key: &'static LockClassKey) {
        // SAFETY: the caller passes memory for a pinned lock; name and key
        // are 'static.
        unsafe { bindings::vgpio_raw_spin_lock_init(p, name.as_char_ptr(), key.as_ptr()) }
    }

    unsafe fn lock_irqsave(p: *mut Self::State) -> kernel::ffi::c_ulong {
        // SAFETY: the caller passes an initialised lock.
        unsafe { bindings::vgpio_raw_spin_lock_irqsave(p) }
    }

    unsafe fn unlock_irqrestore(p: *mut Self::State, flags: kernel::ffi::c_ulong) {
        // SAFETY: the caller holds the lock, taken with these flags.
        unsafe { bindings::vgpio_raw_spin_unlock_irqrestore(p, flags) }
    }
}

/// `spinlock_t`: a spinning lock, which PREEMPT_RT turns into a sleeping
/// one (virtqueue callbacks then run in an irq thread, where that is fine).
pub(crate) struct SpinKind;

// SAFETY: the helpers are spin_lock_init, spin_lock_irqsave and
// spin_unlock_irqrestore.
unsafe impl LockKind for SpinKind {
    type State = bindings::spinlock_t;

    unsafe fn init(p: *mut Self::State, name: &'static CStr, key: &'static LockClassKey) {
        // SAFETY: as for `RawKind::init`.
        unsafe { bindings::vgpio_spin_lock_init(p, name.as_char_ptr(), key.as_ptr()) }
    }

    unsafe fn lock_irqsave(p: *mut Self::State) -> kernel::ffi::c_ulong {
        // SAFETY: the caller passes an initialised lock.
        unsafe { bindings::vgpio_spin_lock_irqsave(p) }
    }

    unsafe fn unlock_irqrestore(p: *mut Self::State, flags: kernel::ffi::c_ulong) {
        // SAFETY: the caller holds the lock, taken with these flags.
        unsafe { bindings::vgpio_spin_unlock_irqrestore(p, flags) }
    }
}

/// A spinlock taken with interrupts disabled, guarding a `T`.
///
/// # Invariants
///
/// `lock` was initialised in place and the value never moves (it is pinned).
/// `data` is only accessed through an [`IrqLockGuard`], i.e. with `lock`
/// held.
#[pin_data]
pub(crate) struct IrqLock<T, K: LockKind> {
    #[pin]
    lock: Opaque<K::State>,
    data: UnsafeCell<T>,
}

/// A `spinlock_t` taken with interrupts disabled (like 7.3's
/// `kernel::sync::SpinLockIrq`).
pub(crate) type SpinLockIrq<T> = IrqLock<T, SpinKind>;
/// A `raw_spinlock_t` taken with interrupts disabled.
pub(crate) type RawSpinLockIrq<T> = IrqLock<T, RawKind>;

// SAFETY: the lock serializes all access to `data`, so sharing the lock
// between threads and interrupt context is sound when `T` can be sent.
unsafe impl<T: Send, K: LockKind> Sync for IrqLock<T, K> {}
// SAFETY: moving the owner to another thread moves `T` with it.
unsafe impl<T: Send, K: LockKind> Send for IrqLock<T, K> {}

impl<T, K: LockKind> IrqLock<T, K> {
    /// A lock around `data`; `name` and `key` identify it to lockdep.
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: &'static LockClassKey,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `p` points to memory for the lock, pinned where it
            // will stay; the name and key are 'static.
            lock <- Opaque::ffi_init(|p| unsafe { K::init(p, name, key) }),
            data: UnsafeCell::new(data),
        })
    }

    /// Take the lock, disabling interrupts on this CPU until the guard drops.
    pub(crate) fn lock(&self) -> IrqLockGuard<'_, T, K> {
        // SAFETY: the lock was initialised (type invariant).
        let flags = unsafe { K::lock_irqsave(self.lock.get()) };
        // INVARIANT: the lock is held, taken with `flags`, on this CPU.
        IrqLockGuard {
            lock: self,
            flags,
            _not_send: PhantomData,
        }
    }
}

/// Proof that an [`IrqLock`] is held; unlocks when dropped.
///
/// Neither `Send` nor `Sync`: it must be released on the CPU (and by the
/// task) that took it, with the interrupt state it saved there, and sharing
/// it would hand out `&T` to other threads whether or not `T` is `Sync`.
///
/// # Invariants
///
/// The lock is held, taken with `K::lock_irqsave`, which returned `flags`.
pub(crate) struct IrqLockGuard<'a, T, K: LockKind> {
    lock: &'a IrqLock<T, K>,
    flags: kernel::ffi::c_ulong,
    _not_send: PhantomData<*mut ()>,
}

/// A held [`SpinLockIrq`].
pub(crate) type SpinLockIrqGuard<'a, T> = IrqLockGuard<'a, T, SpinKind>;

impl<T, K: LockKind> Deref for IrqLockGuard<'_, T, K> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the lock is held (type invariant), so no one else accesses
        // `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T, K: LockKind> DerefMut for IrqLockGuard<'_, T, K> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T, K: LockKind> Drop for IrqLockGuard<'_, T, K> {
    fn drop(&mut self) {
        // SAFETY: the lock is held with these flags (type invariant).
        unsafe { K::unlock_irqrestore(self.lock.lock.get(), self.flags) };
    }
}

/// Run `f` with the guard's lock released (and interrupts as they were
/// before it was taken), then take the lock again: for work that must not
/// run under it (a virtqueue notification is a VM exit).
pub(crate) fn unlocked<T, U>(guard: &mut SpinLockIrqGuard<'_, T>, f: impl FnOnce() -> U) -> U {
    // SAFETY: the guard holds the lock, taken with its flags (type
    // invariant); it is borrowed mutably, so nothing reaches the data
    // through it until the lock is taken again below, with the flags
    // updated, which restores the guard's invariant.
    unsafe { SpinKind::unlock_irqrestore(guard.lock.lock.get(), guard.flags) };
    let r = f();
    // SAFETY: as above.
    guard.flags = unsafe { SpinKind::lock_irqsave(guard.lock.lock.get()) };
    r
}

/// [`super::wait_var_killable`], and `before` (if given) runs once with the lock
/// released, whatever happens: before the task sleeps (it is on the wait
/// queue already, so a wake-up that `before` brings about is not lost), or,
/// if it does not sleep (killed, out of time), before this returns.
/// `before` must not sleep (the task's state is set for the wait).
#[inline]
pub(crate) fn wait_var_killable_then<T, F: FnOnce()>(
    guard: &mut SpinLockIrqGuard<'_, T>,
    var: *const core::ffi::c_void,
    deadline: &mut Deadline,
    mut before: Option<F>,
) -> Result {
    let left = deadline.left();
    let (cb, arg) = super::before_args(&mut before);
    // SAFETY: the guard holds its lock, taken with `guard.flags`, which the
    // helper updates when it retakes the lock, so the guard's invariant
    // holds again on return; `var` is only hashed and compared; `left` is
    // null or a valid place; `cb` and `arg` are `before`'s (`before_args`),
    // a local that nothing else touches until the helper returns.
    let r = unsafe {
        bindings::vgpio_wait_var_killable_unlocked(
            var.cast_mut(),
            guard.lock.lock.get(),
            &mut guard.flags,
            left,
            cb,
            arg,
        )
    };
    super::after_wait(guard, before, r)
}

/// The sleep of [`super::sleep_killable_then`], as 7.x's (`sync_k7.rs`).
#[inline]
pub(super) fn sleep_then<T, F: FnOnce()>(
    guard: &mut SpinLockIrqGuard<'_, T>,
    deadline: &mut Deadline,
    mut before: Option<F>,
) -> Result {
    let left = deadline.left();
    let (cb, arg) = super::before_args(&mut before);
    // SAFETY: the guard holds its lock, taken with `guard.flags`, which the
    // helper updates when it retakes the lock, so the guard's invariant
    // holds again on return; `left` is null or a valid place; `cb` and
    // `arg` are `before`'s (`before_args`), a local that nothing else
    // touches until the helper returns.
    let r = unsafe {
        bindings::vgpio_sleep_killable_unlocked(
            guard.lock.lock.get(),
            &mut guard.flags,
            left,
            cb,
            arg,
        )
    };
    super::after_wait(guard, before, r)
}

/// RCU, as 7.x's `kernel::sync::rcu`.
pub(crate) mod rcu {
    use crate::bindings;
    use core::marker::PhantomData;

    /// An RCU read-side critical section, for as long as the guard lives.
    /// It stays with the task (or CPU) that made it: not `Send`.
    pub(crate) struct Guard(PhantomData<*mut ()>);

    /// Begin a read-side critical section.
    #[inline]
    pub(crate) fn read_lock() -> Guard {
        // SAFETY: callable from any context; the section ends in `drop`, on
        // this same task (the guard cannot move to another). Forgetting the
        // guard only keeps the section open (and, without PREEMPT_RCU,
        // preemption off): grace periods stall, nothing is unsound.
        unsafe { bindings::vgpio_rcu_read_lock() };
        Guard(PhantomData)
    }

    impl Drop for Guard {
        #[inline]
        fn drop(&mut self) {
            // SAFETY: ends the section `read_lock` began, on the same task.
            unsafe { bindings::vgpio_rcu_read_unlock() };
        }
    }

    /// Wait until every RCU read-side critical section that began before
    /// this call has ended. Sleeps: task context only.
    pub(crate) fn synchronize_rcu() {
        // SAFETY: no precondition beyond task context, which a caller in
        // atomic context breaks as a bug (might_sleep reports it), not as
        // unsoundness.
        unsafe { bindings::synchronize_rcu() };
    }
}

/// Report (with CONFIG_DEBUG_ATOMIC_SLEEP) a caller that may not sleep.
pub(crate) fn might_sleep() {
    // SAFETY: only checks the calling context.
    unsafe { bindings::vgpio_might_sleep() };
}

/// How much longer a task may wait: without limit, or some jiffies.
pub(crate) struct Deadline(Option<kernel::ffi::c_long>);

impl Deadline {
    /// Where a C wait helper keeps the jiffies left: null for no limit.
    fn left(&mut self) -> *mut kernel::ffi::c_long {
        self.0
            .as_mut()
            .map_or(core::ptr::null_mut(), core::ptr::from_mut)
    }

    /// No limit.
    pub(crate) fn none() -> Self {
        Deadline(None)
    }

    /// Until `end` (no time at all once it has passed).
    pub(crate) fn until(end: Moment) -> Self {
        // Jiffies wrap: the difference, read as signed, is what is left.
        let left = end.0.wrapping_sub(Moment::now().0) as kernel::ffi::c_long;
        Deadline(Some(left.max(0)))
    }
}

/// A point in time (in jiffies), for a bound shared by several waits.
#[derive(Clone, Copy)]
pub(crate) struct Moment(kernel::ffi::c_ulong);

impl Moment {
    fn now() -> Self {
        // SAFETY: reads the jiffies counter.
        Moment(unsafe { bindings::vgpio_jiffies() })
    }

    /// `ms` milliseconds from now.
    pub(crate) fn after_ms(ms: u32) -> Self {
        // SAFETY: a pure conversion (never negative).
        let d = unsafe { bindings::vgpio_msecs_to_jiffies(ms) } as kernel::ffi::c_ulong;
        Moment(Moment::now().0.wrapping_add(d))
    }
}

/// 7.x's `CondVar` (for locks of our own).
pub(crate) type CondVar = WaitQueue;

/// A wait queue for tasks waiting on a condition guarded by a [`SpinLockIrq`]
/// (a `spinlock_t`: the queue's own lock is one, and may not nest in a raw
/// spinlock).
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

    /// Sleep, not interruptibly, until [`WaitQueue::notify_all`] (or a
    /// spurious wake-up), with the guard's lock released meanwhile. The
    /// caller re-checks its condition. For waits that must end before the
    /// caller may go on (teardown), on something that ends by itself.
    pub(crate) fn wait<T>(&self, guard: &mut SpinLockIrqGuard<'_, T>) {
        // SAFETY: the queue is initialised (type invariant); the guard holds
        // its lock taken with `guard.flags`, which the helper updates when
        // it retakes the lock, so the guard's invariant holds again on
        // return.
        unsafe {
            bindings::vgpio_wait_unlocked(self.wq.get(), guard.lock.lock.get(), &mut guard.flags)
        };
    }

    /// Wake every waiter. Callable from any context but under a raw
    /// spinlock (the queue's own lock is a `spinlock_t`).
    pub(crate) fn notify_all(&self) {
        // SAFETY: the queue is initialised (type invariant).
        unsafe { bindings::vgpio_wake_up_all(self.wq.get()) };
    }
}

/// 7.x's `kernel::sync::atomic` (LKMM atomics whose ordering is a type
/// argument), as far as the driver uses it, over core's atomics: an
/// [`Atomic`] of `bool` or `i8` with `load(Acquire)`, `store(_, Release)`,
/// `xchg(_, Full)` and `cmpxchg(_, _, Full)`. `Full` is core's `SeqCst`
/// here, which orders the operation itself but, unlike the kernel's fully
/// ordered xchg/cmpxchg, is no full fence for the plain accesses around it:
/// code that needs one says so with a fence or a grace period. A failed
/// `cmpxchg` is relaxed, as 7.x's is.
pub(crate) mod atomic {
    use core::sync::atomic::{AtomicBool, AtomicI8, Ordering};

    /// Acquire ordering: later accesses stay after the load.
    pub(crate) struct Acquire;
    /// Release ordering: earlier accesses stay before the store.
    pub(crate) struct Release;
    /// Full ordering (here core's `SeqCst`, see above).
    pub(crate) struct Full;

    /// A value an [`Atomic`] can hold: `bool` and `i8` (through core's).
    pub(crate) trait AtomicType: Copy {
        /// core's atomic for it.
        type Core;
        /// A new one.
        fn new(v: Self) -> Self::Core;
        /// `load`.
        fn load(a: &Self::Core, o: Ordering) -> Self;
        /// `store`.
        fn store(a: &Self::Core, v: Self, o: Ordering);
        /// `swap`.
        fn swap(a: &Self::Core, v: Self, o: Ordering) -> Self;
        /// `compare_exchange`.
        fn cas(a: &Self::Core, old: Self, new: Self, o: Ordering) -> Result<Self, Self>;
    }

    macro_rules! atomic_type {
        ($t:ty, $core:ty) => {
            impl AtomicType for $t {
                type Core = $core;
                fn new(v: Self) -> $core {
                    <$core>::new(v)
                }
                fn load(a: &$core, o: Ordering) -> Self {
                    a.load(o)
                }
                fn store(a: &$core, v: Self, o: Ordering) {
                    a.store(v, o)
                }
                fn swap(a: &$core, v: Self, o: Ordering) -> Self {
                    a.swap(v, o)
                }
                fn cas(a: &$core, old: Self, new: Self, o: Ordering) -> Result<Self, Self> {
                    a.compare_exchange(old, new, o, Ordering::Relaxed)
                }
            }
        };
    }
    atomic_type!(bool, AtomicBool);
    atomic_type!(i8, AtomicI8);

    /// An atomic `T` (7.x: `kernel::sync::atomic::Atomic`).
    pub(crate) struct Atomic<T: AtomicType>(T::Core);

    impl<T: AtomicType> Atomic<T> {
        pub(crate) fn new(v: T) -> Self {
            Atomic(T::new(v))
        }

        pub(crate) fn load(&self, _: Acquire) -> T {
            T::load(&self.0, Ordering::Acquire)
        }

        pub(crate) fn store(&self, v: T, _: Release) {
            T::store(&self.0, v, Ordering::Release)
        }

        pub(crate) fn xchg(&self, v: T, _: Full) -> T {
            T::swap(&self.0, v, Ordering::SeqCst)
        }

        /// `Ok(old)` if it held `old` (and now holds `new`), else
        /// `Err(what it holds)`.
        pub(crate) fn cmpxchg(&self, old: T, new: T, _: Full) -> Result<T, T> {
            T::cas(&self.0, old, new, Ordering::SeqCst)
        }
    }
}
