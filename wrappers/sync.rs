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
//! [`wake_up_var`]), `rcu`, `atomic` (the kernel's atomics, an ordering a
//! type argument), [`might_sleep`], [`Moment`] and [`Deadline`].

#[cfg(vgpio_k612)]
#[path = "sync_k612.rs"]
mod imp;
#[cfg(vgpio_k7)]
#[path = "sync_k7.rs"]
mod imp;

pub(crate) use imp::*;

use super::bindings;

/// Is the current task exiting (`PF_EXITING`)? Its fatal signal has been
/// taken then, so a killable wait can no longer be interrupted. (No kernel
/// crate has this.)
pub(crate) fn current_is_exiting() -> bool {
    // SAFETY: reads the current task's flags; always valid in task context.
    unsafe { bindings::vgpio_current_is_exiting() }
}

/// Wake the tasks waiting on `var` ([`wait_var_killable`]), and only those:
/// the kernel's `wake_up_var`. `var` is only a key (an address the caller
/// owns, so that nobody else's waiters share it): it is hashed and compared,
/// never read. Callable from any context but under a raw spinlock.
pub(crate) fn wake_up_var(var: *const core::ffi::c_void) {
    // SAFETY: wake_up_var only hashes and compares the pointer's value.
    unsafe { bindings::vgpio_wake_up_var(var.cast_mut()) };
}
