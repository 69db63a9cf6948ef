// SPDX-License-Identifier: GPL-2.0

//! gpio_chip registration and callbacks.
//!
//! C header: `include/linux/gpio/driver.h`.

use core::cell::UnsafeCell;
use kernel::ffi::{c_char, c_int, c_uint, c_ulong};

use kernel::error::{from_result, to_result, VTABLE_DEFAULT_ERROR};
use kernel::prelude::*;
use kernel::types::Opaque;

use super::bindings;
use super::bitmap::Bitmap;
use super::cstr::cstr;
use super::sync::atomic::{Acquire, Atomic, Full, Release};
use super::sync::{self, lock_class, rcu, CondVar, SpinLockIrq};
use super::virtio;

/// A line's direction, as gpiolib wants it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LineDirection {
    In,
    Out,
}

/// What a GPIO controller driver provides; gpiolib calls these with the
/// line's offset (0..ngpio), possibly from several tasks at once. The chip
/// is registered with `can_sleep`, so every method may sleep. (The shape of
/// the Rust-for-Linux branch's `gpio::Chip`, with 7.x's setters that return
/// an error.) Optional methods left out are left out of the `gpio_chip`.
#[vtable]
pub(crate) trait Chip: Sync + Send + Sized {
    /// A line was requested by a consumer.
    fn request(&self, _offset: u32) -> Result {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// A line was released.
    fn free(&self, _offset: u32) {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
    fn get_direction(&self, offset: u32) -> Result<LineDirection>;
    fn direction_input(&self, offset: u32) -> Result;
    fn direction_output(&self, offset: u32, value: bool) -> Result;
    fn get(&self, offset: u32) -> Result<bool>;
    /// Registered as 6.12's `set_rv` (since 6.12.y's backport of it) or
    /// 7.x's `set`, so the caller sees the error.
    fn set(&self, offset: u32, value: bool) -> Result;
    /// For each bit set in `mask` (`ngpio` bits long), read the line into
    /// the same bit of `bits` (as long as `mask`'s highest set bit needs:
    /// gpiolib may pass a consumer's own, shorter bitmap).
    fn get_multiple(&self, _mask: &Bitmap, _bits: &mut Bitmap) -> Result {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// For each bit set in `mask` (`ngpio` bits long), set the line to the
    /// same bit of `bits` (as long as `mask`'s highest set bit needs).
    fn set_multiple(&self, _mask: &Bitmap, _bits: &Bitmap) -> Result {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The interrupt controller of a [`Chip`], its own trait as in the
/// Rust-for-Linux branch's `irq::Chip`, for a slow-bus chip (one behind a
/// bus that sleeps): enable, disable, shutdown, mask, unmask and set_type
/// run in atomic context (under the irq descriptor's raw lock) and may only
/// record state; what needs the device is done in `irq_bus_sync_unlock`,
/// which may sleep. No lock is held from the irq core's irq_bus_lock to it:
/// the chip serializes what it sends itself (a sync reads the recorded
/// state when it runs, so concurrent syncs converge on the last recorded
/// state). The irq chip is immutable (`IRQCHIP_IMMUTABLE`), one per chip.
///
/// `irq_disable` (disable_irq) and `irq_shutdown` (free_irq) are followed by
/// gpiolib being told that the line is no longer an enabled interrupt (so
/// its user may make it an output); those two callbacks are always
/// registered for that. The irq core then counts the line as masked
/// whether or not the chip implements them: a chip without `irq_disable`
/// is not told, and must not let an interrupt that comes meanwhile storm
/// (the core keeps the interrupt pending and replays an edge on
/// enable_irq).
///
/// `irq_enable` and `irq_unmask` may leave work for
/// [`IrqChip::irq_deferred`] (returning [`Then::Defer`]): what may not be
/// done under a raw lock (take a `spinlock_t`: map a buffer through the DMA
/// API, for one). An unmask does not always come with a sync: the flow
/// handler unmasks in hard interrupt context after a handler without a
/// thread, and in a softirq when the core replays an edge.
///
/// The flow: `handle_level_irq` (mask, handle, unmask once the handlers,
/// threads included, are done) for every type.
#[vtable]
pub(crate) trait IrqChip: Chip {
    fn irq_enable(&self, _hwirq: u32) -> Then {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
    fn irq_disable(&self, _hwirq: u32) {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
    fn irq_shutdown(&self, _hwirq: u32) {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
    fn irq_mask(&self, hwirq: u32);
    fn irq_unmask(&self, hwirq: u32) -> Then;
    /// `flow_type` is an `IRQ_TYPE_*` value.
    fn irq_set_type(&self, hwirq: u32, flow_type: u32) -> Result;
    fn irq_bus_sync_unlock(&self, _hwirq: u32) {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// What `irq_enable` or `irq_unmask` left for later: run by an
    /// irq_work soon after either returned [`Then::Defer`] (once for any
    /// number of asks meanwhile), with no lock of the irq core held, where
    /// a `spinlock_t` may be taken (hard interrupt context on most kernels,
    /// the irq_work thread on PREEMPT_RT). It may run after the chip is
    /// unregistered, until the registration is dropped (which waits for it).
    fn irq_deferred(&self) {}
}

/// What an irq_chip callback that runs under the irq descriptor's raw lock
/// leaves to [`IrqChip::irq_deferred`].
#[must_use]
pub(crate) enum Then {
    /// Nothing.
    Done,
    /// Run `irq_deferred` soon.
    Defer,
}

/// Line names for a chip: a block of NUL-terminated names and the pointer
/// array gpiolib reads.
///
/// # Invariants
///
/// Every pointer in `ptrs` points to a NUL-terminated string inside `block`,
/// whose heap memory does not move while `self` lives.
pub(crate) struct LineNames {
    _block: KVec<u8>,
    ptrs: KVec<*const c_char>,
}

// SAFETY: the pointers only point into `block`, owned by `self`.
unsafe impl Send for LineNames {}
// SAFETY: immutable after construction.
unsafe impl Sync for LineNames {}

impl LineNames {
    /// One name per NUL-terminated piece of `block`, in order; bytes after
    /// the last NUL are ignored. An empty piece is an unnamed line.
    pub(crate) fn new(names: &[u8]) -> Result<Self> {
        let mut block = KVec::new();
        block.extend_from_slice(names, GFP_KERNEL)?;
        let mut ptrs = KVec::new();
        let mut start = 0;
        for (i, b) in block.iter().enumerate() {
            if *b == 0 {
                let p = if i == start {
                    core::ptr::null()
                } else {
                    block[start..].as_ptr().cast()
                };
                ptrs.push(p, GFP_KERNEL)?;
                start = i + 1;
            }
        }
        Ok(LineNames {
            _block: block,
            ptrs,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.ptrs.len()
    }
}

/// A gpio_chip and the driver data its callbacks get, registered with
/// gpiolib from [`Registration::register`] until [`Registration::unregister`]
/// or drop. Registered once at most: gpiolib leaves a removed chip's
/// `gpio_chip` dirty (its irq domain pointer dangling, `to_irq` set), so a
/// registration that was removed, failed, or unregistered before it
/// registered cannot register again.
///
/// The registration owns the data, so the data outlives the registration:
/// dropping unregisters first (`PinnedDrop` runs before fields are dropped).
///
/// # Invariants
///
/// A `Registration` only exists in place, initialised by [`Registration::new`]
/// (a `PinInit`), so its address is stable. `state` only moves forward,
/// `IDLE` to `REGISTERING` or `GONE`, `REGISTERING` to `REGISTERED` or
/// `GONE`, `REGISTERED` to `GONE`, each step by one caller. When `state` is
/// `REGISTERED`, `gc` was added with `gpiochip_add_data` and a pointer to
/// `self` and not removed. `names`, `gc` and `irq_chip` are written by us
/// only by the one caller that moved `state` from `IDLE`, before it leaves
/// `REGISTERING`; `irq_chip` is not written after that; gpiolib writes `gc`
/// inside `gpiochip_add_data` (before `REGISTERED` is stored) and inside
/// `gpiochip_remove` (after `REGISTERED` was left and an RCU grace period).
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: Chip> {
    #[pin]
    gc: Opaque<bindings::gpio_chip>,
    /// This chip's own irq_chip (immutable once registered).
    #[pin]
    irq_chip: Opaque<bindings::irq_chip>,
    /// Calls of the irq_bus_sync_unlock callback in progress: `unregister`
    /// waits (on `synced`) for them after the chip is gone. No lock is held
    /// from irq_bus_lock to irq_bus_sync_unlock: once gpiochip_remove has
    /// pointed a line's descriptor away from our irq_chip, a task between
    /// the two (free_irq) never calls the unlock back.
    #[pin]
    syncing: SpinLockIrq<Syncs>,
    #[pin]
    synced: CondVar,
    state: Atomic<i8>,
    names: UnsafeCell<Option<LineNames>>,
    /// Runs [`IrqChip::irq_deferred`]; all zero (never queued) until
    /// [`Registration::register_with_irq`] sets it up.
    #[pin]
    irq_work: Opaque<bindings::irq_work>,
    #[pin]
    data: T,
}

/// The irq_bus_sync_unlock calls in progress, and whether the chip is going
/// (`unregister` began, or a registration failed): then no new one starts.
#[derive(Default)]
struct Syncs {
    running: usize,
    going: bool,
}

const IDLE: i8 = 0;
const REGISTERING: i8 = 1;
const REGISTERED: i8 = 2;
const GONE: i8 = 3;

// SAFETY: `gc`, `irq_chip` and `names` are written by the one caller that
// moved `state` from `IDLE` (an atomic compare-exchange, so one caller at
// most, ever), before gpiolib knows the chip. Then gpiolib writes `gc` in
// `gpiochip_add_data`, before the Release store of `REGISTERED` that
// `handle_irq`'s Acquire load pairs with, and in `gpiochip_remove`, which
// the one caller that moved `state` from `REGISTERED` runs after an RCU
// grace period, so no `handle_irq` that saw `REGISTERED` still reads it
// (type invariants). `syncing` is a lock; the callbacks reach `T` through
// `&T`, and `T` is `Sync`.
unsafe impl<T: Chip + Send> Sync for Registration<T> {}
// SAFETY: see `Sync`.
unsafe impl<T: Chip + Send> Send for Registration<T> {}

/// An all-zero C struct in an [`Opaque`] (which claims nothing about what
/// it holds).
#[cfg(vgpio_k7)]
fn zeroed<S>() -> impl PinInit<Opaque<S>> {
    Opaque::zeroed()
}

/// An all-zero C struct in an [`Opaque`] (which claims nothing about what
/// it holds; 6.12's crate has no `Opaque::zeroed`).
#[cfg(vgpio_k612)]
fn zeroed<S>() -> impl PinInit<Opaque<S>> {
    Opaque::ffi_init(|p: *mut S| {
        // SAFETY: `ffi_init` passes a place valid for writes of one `S`.
        unsafe { p.write_bytes(0, 1) }
    })
}

impl<T: Chip> Registration<T> {
    /// The irq_work, through a pointer to the whole registration: the
    /// callback steps back from it to the registration.
    fn irq_work_ptr(&self) -> *mut bindings::irq_work {
        let this = core::ptr::from_ref(self);
        // SAFETY: `this` comes from a reference, so it points to a live
        // registration; the field is in bounds and no reference is made.
        // (`Opaque` is transparent: the C struct's address.)
        unsafe { core::ptr::addr_of!((*this).irq_work) }
            .cast::<bindings::irq_work>()
            .cast_mut()
    }

    pub(crate) fn new(data: impl PinInit<T, Error>) -> impl PinInit<Self, Error> {
        try_pin_init!(Registration {
            // (all zero: the C "nothing set" state)
            gc <- zeroed(),
            irq_chip <- zeroed(),
            syncing <- SpinLockIrq::new(Syncs::default(), cstr!(c"virtio_gpio_rs.irq_syncing"), lock_class!()),
            synced <- CondVar::new(cstr!(c"virtio_gpio_rs.irq_synced"), lock_class!()),
            state: Atomic::new(IDLE),
            names: UnsafeCell::new(None),
            irq_work <- zeroed(),
            data <- data,
        }? Error)
    }

    /// Hand interrupt `hwirq` to its handlers (from any context; the
    /// device's interrupt, usually). Fails if the chip has no interrupts or
    /// the line has no mapping.
    pub(crate) fn handle_irq(&self, hwirq: u32) -> Result {
        // `unregister` leaves REGISTERED, then waits for an RCU grace period
        // before gpiochip_remove: a call that still sees REGISTERED inside
        // this read-side section ends before the chip goes.
        let _rcu = rcu::read_lock();
        if self.state.load(Acquire) != REGISTERED {
            Err(ENODEV)
        } else {
            // SAFETY: the chip is registered and stays so until this
            // read-side section ends (see above), so gpiolib's irq domain,
            // if any, is live.
            let domain = unsafe { (*self.gc.get()).irq.domain };
            if domain.is_null() {
                Err(ENODEV)
            } else {
                // (7.x takes an irq_hw_number_t, 6.12 an unsigned int;
                // widening: no kernel has a usize narrower than u32)
                #[cfg(vgpio_k7)]
                let hwirq = hwirq as bindings::irq_hw_number_t;
                // SAFETY: a live domain and a hardware line number; the
                // function looks the mapping up itself and fails if there is
                // none. The `_safe` variant disables local interrupts around
                // the flow handler, so a caller in any context (a virtqueue
                // callback force-threaded on PREEMPT_RT, or task context) is
                // sound: the flow handlers take the descriptor's raw lock
                // without saving the interrupt state.
                to_result(unsafe { bindings::generic_handle_domain_irq_safe(domain, hwirq) })
            }
        }
    }

    /// The driver data.
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    /// Register the chip for `vdev` with `ngpio` lines and, if given, their
    /// names (exactly `ngpio` of them).
    pub(crate) fn register(
        &self,
        vdev: &virtio::Device,
        module: &'static ThisModule,
        ngpio: u16,
        names: Option<LineNames>,
    ) -> Result {
        // SAFETY: sets nothing.
        unsafe { self.register_inner(vdev, module, ngpio, names, |_, _| {}) }
    }

    /// # Safety
    ///
    /// `setup_irq` may only set up the irq chip (the second pointer) with
    /// callbacks that match the C prototypes and the data pointer (this
    /// registration), and install it in the gpio_chip (the first).
    unsafe fn register_inner(
        &self,
        vdev: &virtio::Device,
        module: &'static ThisModule,
        ngpio: u16,
        names: Option<LineNames>,
        setup_irq: impl FnOnce(*mut bindings::gpio_chip, *mut bindings::irq_chip),
    ) -> Result {
        if names.as_ref().is_some_and(|n| n.len() != ngpio as usize) {
            return Err(EINVAL);
        }
        // (the caller that wins owns `gc` and `names` until it leaves
        // REGISTERING: Full, like the kernel's fully ordered cmpxchg, where
        // Acquire would do)
        if self.state.cmpxchg(IDLE, REGISTERING, Full).is_err() {
            return Err(EBUSY);
        }
        let gc = self.gc.get();
        // SAFETY: we moved `state` from IDLE, so no one else writes `names`
        // or `gc`, and gpiolib does not know the chip yet. The label (the
        // device name) and the names live at least as long as the
        // registration; the callbacks match the C prototypes.
        unsafe {
            *self.names.get() = names;
            (*gc).label = vdev.name().as_char_ptr();
            (*gc).parent = vdev.dev();
            (*gc).owner = module.as_ptr().cast();
            (*gc).base = -1;
            (*gc).ngpio = ngpio;
            (*gc).can_sleep = true;
            (*gc).names = (*self.names.get())
                .as_ref()
                .map_or(core::ptr::null(), |n| n.ptrs.as_ptr());
            if T::HAS_REQUEST {
                (*gc).request = Some(request_callback::<T>);
            }
            if T::HAS_FREE {
                (*gc).free = Some(free_callback::<T>);
            }
            (*gc).get_direction = Some(get_direction_callback::<T>);
            (*gc).direction_input = Some(direction_input_callback::<T>);
            (*gc).direction_output = Some(direction_output_callback::<T>);
            (*gc).get = Some(get_callback::<T>);
            if T::HAS_GET_MULTIPLE {
                (*gc).get_multiple = Some(get_multiple_callback::<T>);
            }
            // 6.12: the setters that return an error are the `_rv` ones;
            // 7.x has only those, under the old names.
            #[cfg(vgpio_k612)]
            {
                (*gc).set_rv = Some(set_callback::<T>);
                if T::HAS_SET_MULTIPLE {
                    (*gc).set_multiple_rv = Some(set_multiple_callback::<T>);
                }
            }
            #[cfg(vgpio_k7)]
            {
                (*gc).set = Some(set_callback::<T>);
                if T::HAS_SET_MULTIPLE {
                    (*gc).set_multiple = Some(set_multiple_callback::<T>);
                }
            }
            setup_irq(gc, self.irq_chip.get());
        }
        // SAFETY: `gc` is fully set up; `self` (the data pointer) stays at
        // this address and alive until `unregister` (type invariant, drop).
        let r = to_result(unsafe {
            bindings::vgpio_gpiochip_add_data(gc, core::ptr::from_ref(self).cast_mut().cast())
        });
        if r.is_err() {
            // gpiolib has let go of the chip; a sync that started while it
            // registered may still run: no new one starts, and `unregister`
            // (or drop) waits for those, after the driver has stopped its
            // device (a sync may be waiting for a silent device: not here,
            // under probe's device lock).
            self.syncing.lock().going = true;
        }
        // (Release: gpiolib's writes to `gc`, the irq domain among them, are
        // seen by `handle_irq`, whose Acquire load pairs with this)
        self.state
            .store(if r.is_ok() { REGISTERED } else { GONE }, Release);
        r
    }

    /// Remove the chip from gpiolib (waits for callbacks in progress, and
    /// for [`Registration::handle_irq`] calls that saw it registered:
    /// sleeps, task context only). Once removed, the chip cannot register
    /// again. (Called while a `register` is in progress, it stops syncs and
    /// waits for those running: the chip goes at drop.)
    pub(crate) fn unregister(&self) {
        // (one caller moves the state from REGISTERED, and that one removes
        // the chip; the order of its other accesses comes from the RCU
        // grace period below, Full is the kernel's plain fully ordered
        // cmpxchg)
        if self.state.cmpxchg(REGISTERED, GONE, Full).is_ok() {
            // Calls of handle_irq that saw REGISTERED end. (The driver
            // stops its device's callbacks before this as well; this keeps
            // the registration sound for a caller that does not.)
            rcu::synchronize_rcu();
            // No sync starts from here on: the device is gone or going,
            // and gpiochip_remove's own free_irq of lines still requested
            // needs none.
            self.syncing.lock().going = true;
            // SAFETY: the chip was added and is removed once (the state moved
            // from REGISTERED exactly once).
            unsafe { bindings::gpiochip_remove(self.gc.get()) };
        } else {
            // Never registered: nor can it be from here on (the syncs are
            // stopped below for good).
            let _ = self.state.cmpxchg(IDLE, GONE, Full);
        }
        // (also the syncs of a registration that failed)
        self.drain_syncs();
    }

    /// Stop new syncs and wait for those in progress. A task that found our
    /// irq_chip before gpiochip_remove pointed the lines' descriptors away
    /// from it may still be in irq_bus_sync_unlock. The last one wakes us
    /// under `syncing`, which it releases last, so nothing of `self` is
    /// touched by it once this returns. (A task that read the chip pointer
    /// but has not counted itself in yet is the irq core's own window: it
    /// reads the descriptor's chip without a lock; the same holds for every
    /// irq_chip that goes away.)
    fn drain_syncs(&self) {
        let mut s = self.syncing.lock();
        s.going = true;
        while s.running != 0 {
            self.synced.wait(&mut s);
        }
    }
}

impl<T: IrqChip> Registration<T> {
    /// [`Registration::register`], with the chip's own irq chip: gpiolib
    /// then gives the chip an irq domain, `ngpio` interrupts handled by
    /// `handle_level_irq`, which the driver raises with
    /// [`Registration::handle_irq`].
    pub(crate) fn register_with_irq(
        &self,
        vdev: &virtio::Device,
        module: &'static ThisModule,
        ngpio: u16,
        names: Option<LineNames>,
    ) -> Result {
        let name = vdev.name().as_char_ptr();
        let work = self.irq_work_ptr();
        let setup = |gc: *mut bindings::gpio_chip, ic: *mut bindings::irq_chip| {
            // SAFETY: the registration's own irq_work, all zero (so idle):
            // nothing queues it before the irq chip is installed below, and
            // `register_inner` calls this once per registration, ever.
            unsafe { bindings::vgpio_init_irq_work(work, Some(irq_work_callback::<T>)) };
            // SAFETY: `register_inner` passes the registration's own gpio
            // and irq chips, not registered yet; the name lives as long as
            // the device, so as the registration; the callbacks match the
            // C prototypes and take the data pointer as a `Registration<T>`.
            unsafe {
                (*ic).name = name;
                // (always: they keep gpiolib's count of interrupt lines)
                (*ic).irq_enable = Some(irq_enable_callback::<T>);
                (*ic).irq_disable = Some(irq_disable_callback::<T>);
                (*ic).irq_shutdown = Some(irq_shutdown_callback::<T>);
                (*ic).irq_mask = Some(irq_mask_callback::<T>);
                (*ic).irq_unmask = Some(irq_unmask_callback::<T>);
                (*ic).irq_set_type = Some(irq_set_type_callback::<T>);
                if T::HAS_IRQ_BUS_SYNC_UNLOCK {
                    (*ic).irq_bus_sync_unlock = Some(irq_bus_sync_unlock_callback::<T>);
                }
                (*ic).irq_request_resources = Some(bindings::gpiochip_irq_reqres);
                (*ic).irq_release_resources = Some(bindings::gpiochip_irq_relres);
                (*ic).flags = bindings::IRQCHIP_IMMUTABLE as c_ulong;
                bindings::vgpio_gpio_irq_chip_set_chip(gc, ic);
            }
        };
        // SAFETY: `setup` sets up the irq chip and installs it, as asked.
        unsafe { self.register_inner(vdev, module, ngpio, names, setup) }
    }

    /// Have [`IrqChip::irq_deferred`] run soon.
    fn defer(&self) {
        // SAFETY: only the callbacks of the registered irq chip call this,
        // and `register_with_irq` set the irq_work up before it installed
        // them; the registration outlives the work (dropping it waits for
        // the work first). Queueing an irq_work already pending does
        // nothing, from any context.
        unsafe { bindings::irq_work_queue(self.irq_work_ptr()) };
    }

    /// Run the chip's irq_bus_sync_unlock for `hwirq` unless the chip is
    /// going, counted so that unregistering waits for it. (While the chip
    /// registers, syncs run: gpiolib publishes it before add returns.)
    fn sync_unlock(&self, hwirq: u32) {
        // It may sleep, although a sync with nothing to change does not: a
        // caller in atomic context (disable_irq_nosync in a hard handler,
        // which the irq core forbids for slow-bus chips) is caught every
        // time, not only when the sync has work.
        sync::might_sleep();
        {
            let mut s = self.syncing.lock();
            if s.going {
                return;
            }
            s.running += 1;
        }
        self.data.irq_bus_sync_unlock(hwirq);
        let mut s = self.syncing.lock();
        s.running -= 1;
        if s.running == 0 {
            self.synced.notify_all();
        }
    }
}

#[pinned_drop]
impl<T: Chip> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        self.unregister();
        // The chip is gone, so nothing queues the irq_work any more: wait
        // for a queued or running one before the data goes (if it was set
        // up: irq_work_sync costs an RCU grace period on PREEMPT_RT).
        let work = self.irq_work_ptr();
        // SAFETY: the registration's own irq_work, set up or all zero. Only
        // `init_irq_work`, in `register_with_irq`, writes `func`, before
        // the chip that queues the work exists and so before this drop
        // could begin; the irq_work core, which may still have the work
        // queued or running, only reads it (it writes the flags, the list
        // node and the rcuwait).
        if unsafe { (*work).func.is_some() } {
            // SAFETY: set up; it may sleep, as dropping a registration may
            // (`unregister`).
            unsafe { bindings::irq_work_sync(work) };
        }
    }
}

/// # Safety
///
/// Called by the irq_work core only, with the irq_work of a
/// `Registration<T>` that `register_with_irq` set up.
unsafe extern "C" fn irq_work_callback<T: IrqChip>(work: *mut bindings::irq_work) {
    let off = core::mem::offset_of!(Registration<T>, irq_work);
    // SAFETY: `work` is the `irq_work` field of a `Registration<T>` (the
    // caller's guarantee; `Opaque` is transparent, so the field's address
    // is the C struct's), which is alive: dropping it waits for the work.
    let reg = unsafe { &*work.cast::<u8>().sub(off).cast::<Registration<T>>() };
    reg.data.irq_deferred();
}

/// The registration behind an irq_data of our chip.
///
/// # Safety
///
/// `d` must belong to the irq domain of a chip registered by a
/// `Registration<T>`.
unsafe fn irq_registration<'a, T: IrqChip>(
    d: *mut bindings::irq_data,
) -> (&'a Registration<T>, u32) {
    // SAFETY: gpiolib sets the chip data of its irqs to the gpio_chip, whose
    // data pointer is the registration (caller's guarantee). It is alive:
    // every irq_chip callback but irq_bus_sync_unlock runs with the irq
    // descriptor's lock held, and gpiochip_remove detaches our irq_chip from
    // each descriptor under that lock (irq_domain_disassociate) before it
    // returns, that is before `unregister` returns and the registration
    // can go; for irq_bus_sync_unlock see its callback.
    unsafe {
        let gc = bindings::vgpio_irq_data_get_gpio_chip(d);
        (
            &*(bindings::gpiochip_get_data(gc) as *const Registration<T>),
            (*d).hwirq as u32,
        )
    }
}

/// # Safety
///
/// Called by the irq core only, with an irq of a chip registered by a
/// `Registration<T>`.
unsafe extern "C" fn irq_enable_callback<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: the irq core calls back with an irq of our chip.
    let (reg, hwirq) = unsafe { irq_registration::<T>(d) };
    // SAFETY: our registered chip and one of its lines; immutable irq chips
    // tell gpiolib themselves that the line is in use as an interrupt.
    unsafe { bindings::gpiochip_enable_irq(reg.gc.get(), hwirq) };
    if T::HAS_IRQ_ENABLE {
        if let Then::Defer = reg.data.irq_enable(hwirq) {
            reg.defer();
        }
    }
}

/// # Safety
///
/// Called by the irq core only, with an irq of a chip registered by a
/// `Registration<T>`.
unsafe extern "C" fn irq_disable_callback<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: the irq core calls back with an irq of our chip.
    let (reg, hwirq) = unsafe { irq_registration::<T>(d) };
    if T::HAS_IRQ_DISABLE {
        reg.data.irq_disable(hwirq);
    }
    // SAFETY: as in `irq_enable_callback`. gpiolib no longer counts the
    // line as an enabled interrupt: its user may drive it meanwhile.
    unsafe { bindings::gpiochip_disable_irq(reg.gc.get(), hwirq) };
}

/// # Safety
///
/// Called by the irq core only, with an irq of a chip registered by a
/// `Registration<T>`.
unsafe extern "C" fn irq_shutdown_callback<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: the irq core calls back with an irq of our chip.
    let (reg, hwirq) = unsafe { irq_registration::<T>(d) };
    if T::HAS_IRQ_SHUTDOWN {
        reg.data.irq_shutdown(hwirq);
    }
    // SAFETY: as in `irq_enable_callback`.
    unsafe { bindings::gpiochip_disable_irq(reg.gc.get(), hwirq) };
}

/// # Safety
///
/// Called by the irq core only, with an irq of a chip registered by a
/// `Registration<T>`.
unsafe extern "C" fn irq_mask_callback<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: the irq core calls back with an irq of our chip.
    let (reg, hwirq) = unsafe { irq_registration::<T>(d) };
    reg.data.irq_mask(hwirq);
}

/// # Safety
///
/// Called by the irq core only, with an irq of a chip registered by a
/// `Registration<T>`.
unsafe extern "C" fn irq_unmask_callback<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: the irq core calls back with an irq of our chip.
    let (reg, hwirq) = unsafe { irq_registration::<T>(d) };
    if let Then::Defer = reg.data.irq_unmask(hwirq) {
        reg.defer();
    }
}

/// # Safety
///
/// Called by the irq core only, with an irq of a chip registered by a
/// `Registration<T>`, and the irq's descriptor lock held.
unsafe extern "C" fn irq_set_type_callback<T: IrqChip>(
    d: *mut bindings::irq_data,
    flow_type: c_uint,
) -> c_int {
    // SAFETY: the irq core calls back with an irq of our chip.
    let (reg, hwirq) = unsafe { irq_registration::<T>(d) };
    from_result(|| {
        reg.data.irq_set_type(hwirq, flow_type)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called by the irq core only, with an irq of a chip registered by a
/// `Registration<T>`.
unsafe extern "C" fn irq_bus_sync_unlock_callback<T: IrqChip>(d: *mut bindings::irq_data) {
    // SAFETY: the irq core calls back with an irq of our chip. Without the
    // descriptor's lock: the registration stays alive for a call that has
    // counted itself in (`sync_unlock`; `unregister` waits for those). What
    // remains is the irq core's own window, which every irq_chip with a
    // bus lock shares (the C driver too): a free_irq that read the
    // descriptor's chip before gpiochip_remove detached it, and has not yet
    // called back, holds no reference that keeps the chip (or the module)
    // alive once irq_release_resources has run. No driver can close it.
    let (reg, hwirq) = unsafe { irq_registration::<T>(d) };
    reg.sync_unlock(hwirq);
}

/// The chip's data from a `gpio_chip` pointer gpiolib passed to a callback.
///
/// # Safety
///
/// `gc` must be a chip registered by [`Registration::register`] with a `T`.
unsafe fn chip_data<'a, T: Chip>(gc: *mut bindings::gpio_chip) -> &'a T {
    // SAFETY: the caller guarantees `gc` was registered by a
    // `Registration<T>` with a pointer to itself, alive while registered.
    unsafe { &(*(bindings::gpiochip_get_data(gc) as *const Registration<T>)).data }
}

fn ngpio(gc: *mut bindings::gpio_chip) -> usize {
    // SAFETY: gpiolib passes its live chip.
    unsafe { (*gc).ngpio as usize }
}

/// How many bits a value bitmap for `mask` has at least: up to its highest
/// set bit.
fn masked_len(mask: &Bitmap) -> usize {
    mask.last_bit().map_or(0, |l| l + 1)
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`.
unsafe extern "C" fn request_callback<T: Chip>(
    gc: *mut bindings::gpio_chip,
    offset: c_uint,
) -> c_int {
    // SAFETY: gpiolib calls back with our registered chip.
    from_result(|| unsafe { chip_data::<T>(gc) }.request(offset).map(|()| 0))
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`.
unsafe extern "C" fn free_callback<T: Chip>(gc: *mut bindings::gpio_chip, offset: c_uint) {
    // SAFETY: gpiolib calls back with our registered chip.
    unsafe { chip_data::<T>(gc) }.free(offset)
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`.
unsafe extern "C" fn get_direction_callback<T: Chip>(
    gc: *mut bindings::gpio_chip,
    offset: c_uint,
) -> c_int {
    from_result(|| {
        // SAFETY: gpiolib calls back with our registered chip.
        Ok(match unsafe { chip_data::<T>(gc) }.get_direction(offset)? {
            LineDirection::In => bindings::GPIO_LINE_DIRECTION_IN as c_int,
            LineDirection::Out => bindings::GPIO_LINE_DIRECTION_OUT as c_int,
        })
    })
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`.
unsafe extern "C" fn direction_input_callback<T: Chip>(
    gc: *mut bindings::gpio_chip,
    offset: c_uint,
) -> c_int {
    from_result(|| {
        // SAFETY: gpiolib calls back with our registered chip.
        unsafe { chip_data::<T>(gc) }
            .direction_input(offset)
            .map(|()| 0)
    })
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`.
unsafe extern "C" fn direction_output_callback<T: Chip>(
    gc: *mut bindings::gpio_chip,
    offset: c_uint,
    value: c_int,
) -> c_int {
    from_result(|| {
        // SAFETY: gpiolib calls back with our registered chip.
        unsafe { chip_data::<T>(gc) }
            .direction_output(offset, value != 0)
            .map(|()| 0)
    })
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`.
unsafe extern "C" fn get_callback<T: Chip>(gc: *mut bindings::gpio_chip, offset: c_uint) -> c_int {
    // SAFETY: gpiolib calls back with our registered chip.
    from_result(|| unsafe { chip_data::<T>(gc) }.get(offset).map(c_int::from))
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`.
unsafe extern "C" fn set_callback<T: Chip>(
    gc: *mut bindings::gpio_chip,
    offset: c_uint,
    value: c_int,
) -> c_int {
    from_result(|| {
        // SAFETY: gpiolib calls back with our registered chip.
        unsafe { chip_data::<T>(gc) }
            .set(offset, value != 0)
            .map(|()| 0)
    })
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`
/// and two bitmaps of `BITS_TO_LONGS(ngpio)` words each.
unsafe extern "C" fn get_multiple_callback<T: Chip>(
    gc: *mut bindings::gpio_chip,
    mask: *mut c_ulong,
    bits: *mut c_ulong,
) -> c_int {
    // SAFETY: gpiolib's mask has BITS_TO_LONGS(ngpio) aligned words
    // (`unsigned long`, the kernel crate's `usize`), valid and not written
    // for the duration of the call.
    let mask = unsafe { Bitmap::from_raw(mask.cast::<usize>(), ngpio(gc)) };
    // SAFETY: `bits` is a distinct bitmap, ours to write during the call,
    // of at least as many bits as `mask`'s highest set bit needs (gpiolib's
    // fast path for a consumer's array passes the consumer's bitmap, as long
    // as the array, whose lines are the chip's first ones).
    let bits = unsafe { Bitmap::from_raw_mut(bits.cast::<usize>(), masked_len(mask)) };
    from_result(|| {
        // SAFETY: gpiolib calls back with our registered chip.
        unsafe { chip_data::<T>(gc) }
            .get_multiple(mask, bits)
            .map(|()| 0)
    })
}

/// # Safety
///
/// Called by gpiolib only, with a chip registered by a `Registration<T>`
/// and two bitmaps of `BITS_TO_LONGS(ngpio)` words each.
unsafe extern "C" fn set_multiple_callback<T: Chip>(
    gc: *mut bindings::gpio_chip,
    mask: *mut c_ulong,
    bits: *mut c_ulong,
) -> c_int {
    // SAFETY: as in `get_multiple_callback`.
    let mask = unsafe { Bitmap::from_raw(mask.cast::<usize>(), ngpio(gc)) };
    // SAFETY: as in `get_multiple_callback`; only read here.
    let bits = unsafe { Bitmap::from_raw(bits.cast::<usize>(), masked_len(mask)) };
    from_result(|| {
        // SAFETY: gpiolib calls back with our registered chip.
        unsafe { chip_data::<T>(gc) }
            .set_multiple(mask, bits)
            .map(|()| 0)
    })
}
