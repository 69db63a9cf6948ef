// SPDX-License-Identifier: GPL-2.0

//! Locking, waiting and RCU, under the names of 7.x's `kernel::sync`.
//!
//! On 7.x this is mostly the kernel crate's own (`sync_k7.rs`); on 6.12,
//! whose kernel crate lacks most of it, hand-written (`sync_k612.rs`). Both
//! give the driver the same names: [`SpinLockIrq`] (a `spinlock_t` that keeps
//! interrupts off while held), [`RawSpinLockIrq`] (a `raw_spinlock_t`, for
//! what irq_chip callbacks touch under the irq descriptor's raw lock),
//! [`CondVar`] (sleep until a condition under a [`SpinLockIrq`] holds),
//! keyed waits ([`wait_var_killable`],
//! [`wake_up_var`]), a sleep that one known waker ends ([`Waiter`],
//! [`sleep_killable_then`]), `rcu`, `atomic` (the kernel's atomics, an ordering a
//! type argument), [`might_sleep`], [`Moment`] and [`Deadline`].

#[cfg(vgpio_k612)]
#[path = "sync_k612.rs"]
mod imp;
#[cfg(vgpio_k7)]
#[path = "sync_k7.rs"]
mod imp;

pub(crate) use imp::*;

use kernel::prelude::*;
use kernel::task::Task;

use super::bindings;
use super::virtio::ARef;

/// Is the current task exiting (`PF_EXITING`)? Its fatal signal has been
/// taken then, so a killable wait can no longer be interrupted. (No kernel
/// crate has this.)
pub(crate) fn current_is_exiting() -> bool {
    // SAFETY: reads the current task's flags; always valid in task context.
    unsafe { bindings::vgpio_current_is_exiting() }
}

/// Sleep, killably, until [`wake_up_var`] for `var` (or a spurious
/// wake-up), with the guard's lock released meanwhile; the caller re-checks
/// its condition, which its wakers change under the same lock. Fails with
/// `ERESTARTSYS` on a fatal signal, `ETIMEDOUT` once `deadline` is spent.
/// `var` is only a key (see `wake_up_var`). No kernel crate has a keyed or
/// a killable wait.
pub(crate) fn wait_var_killable<T>(
    guard: &mut SpinLockIrqGuard<'_, T>,
    var: *const core::ffi::c_void,
    deadline: &mut Deadline,
) -> Result {
    wait_var_killable_then(guard, var, deadline, None::<fn()>)
}

/// What the C wait helpers call back, once the lock is dropped and the task
/// is on the wait queue, before it sleeps: the `before` closure of
/// `wait_var_killable_then`, taken out of its `Option` (so it runs at most
/// once).
///
/// # Safety
///
/// `arg` points to an `Option<F>` that is valid for the call and that
/// nothing else accesses during it.
unsafe extern "C" fn call_before<F: FnOnce()>(arg: *mut core::ffi::c_void) {
    // SAFETY: the caller's guarantee.
    let before = unsafe { &mut *arg.cast::<Option<F>>() };
    if let Some(f) = before.take() {
        f();
    }
}

/// The callback and argument a C wait helper takes for `before`: null for
/// none.
type BeforeArgs = (
    Option<unsafe extern "C" fn(*mut core::ffi::c_void)>,
    *mut core::ffi::c_void,
);

/// `before` as a C wait helper's callback and argument (see
/// [`call_before`]); the argument points to `before`, which must stay put
/// and untouched until the helper returns.
fn before_args<F: FnOnce()>(before: &mut Option<F>) -> BeforeArgs {
    if before.is_none() {
        return (None, core::ptr::null_mut());
    }
    (Some(call_before::<F>), core::ptr::from_mut(before).cast())
}

/// The end of a `wait_var_killable_then`: `before` runs now, with the lock
/// released, if the C helper returned without sleeping (so without calling
/// it); then the helper's result `r` (0 or a negative errno).
fn after_wait<T, F: FnOnce()>(
    guard: &mut SpinLockIrqGuard<'_, T>,
    mut before: Option<F>,
    r: core::ffi::c_int,
) -> Result {
    if let Some(f) = before.take() {
        unlocked(guard, f);
    }
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    Ok(())
}

/// Wake the tasks waiting on `var` ([`wait_var_killable`]), and only those:
/// the kernel's `wake_up_var`. `var` is only a key (an address the caller
/// owns, so that nobody else's waiters share it): it is hashed and compared,
/// never read. Callable from any context but under a raw spinlock.
pub(crate) fn wake_up_var(var: *const core::ffi::c_void) {
    // SAFETY: wake_up_var only hashes and compares the pointer's value.
    #[cfg(vgpio_k7)]
    unsafe {
        kernel::bindings::wake_up_var(var.cast_mut())
    };
    // SAFETY: as above (6.12's kernel crate does not bind it).
    #[cfg(vgpio_k612)]
    unsafe {
        bindings::vgpio_wake_up_var(var.cast_mut())
    };
}

/// A task asleep in [`sleep_killable_then`], where its waker finds it:
/// cheaper than a wait queue (no queue to look up, lock, join and leave),
/// for a wait with one sleeper and one place its waker looks. Holds a
/// reference to the task, so waking it is sound whatever became of the task
/// (one that is not asleep, or asleep for another reason, takes it as a
/// spurious wake-up).
pub(crate) struct Waiter(ARef<Task>);

impl Waiter {
    /// The current task.
    fn current() -> Self {
        let me: &Task = kernel::current!();
        Waiter(ARef::from(me))
    }

    /// Wake the task up (`wake_up_process`; any context).
    #[inline]
    pub(crate) fn wake(&self) {
        self.0.wake_up();
    }
}

/// Sleep, killably, until the [`Waiter`] left at `place` is woken (or a
/// spurious wake-up), with the guard's lock released meanwhile: the task's
/// `Waiter` (from `me`, or made) goes to `place` before the sleep and back
/// to `me` after it, both under the lock, so no wake-up reaches the task
/// once this returned. The caller checked its condition under the lock,
/// and the waker changes it under the lock before it wakes the `Waiter`
/// there, so no wake-up is lost. `before`, if given, runs once with the
/// lock released: before the task sleeps, or, if it does not sleep (killed,
/// out of time), before this returns; it must not sleep itself. Fails with
/// `ERESTARTSYS` on a fatal signal, `ETIMEDOUT` once `deadline` is spent.
#[inline]
pub(crate) fn sleep_killable_then<T: Unpin, F: FnOnce()>(
    guard: &mut SpinLockIrqGuard<'_, T>,
    place: impl Fn(&mut T) -> &mut Option<Waiter>,
    me: &mut Option<Waiter>,
    deadline: &mut Deadline,
    before: Option<F>,
) -> Result {
    let w = me.take().unwrap_or_else(Waiter::current);
    // (a place somebody else sleeps on: they are woken, and go back to it)
    if let Some(other) = place(guard).replace(w) {
        other.wake();
    }
    let r = imp::sleep_then(guard, deadline, before);
    *me = place(guard).take();
    r
}
