// SPDX-License-Identifier: GPL-2.0

//! Virtio drivers, devices and virtqueues.
//!
//! Shaped like the Rust virtio abstraction proposed upstream (2026): a
//! `#[vtable]` [`Driver`] trait whose probe builds the driver's state as a
//! pin-initialiser, a bus adapter that attaches it to the device, marks the
//! device ready and calls [`Driver::init`], device contexts ([`Core`] in
//! probe and remove, [`Bound`] while bound), [`module_virtio_driver!`], and
//! virtqueues the adapter deletes after remove (or a failed probe), having
//! revoked every handle first, so no queue can be used after `del_vqs`.
//! Differences, each because of this driver: typed queues whose
//! buffers are owned `KBox<M>` messages ([`Buffer`]); [`Device::stop`], which
//! breaks the queues and waits for running callbacks before the reset (a
//! virtio-mmio reset does not wait for them); probe returns its initialiser
//! inside a `Result` (what fails before anything is built fails there).
//!
//! C headers: `include/linux/virtio.h`, `include/linux/virtio_config.h`.

#[cfg(vgpio_k612)]
use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::error::{from_result, to_result};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::{ForeignOwnable, Opaque};

// (re-exported: the driver names `virtio::ARef`, which 7.x's crate moved)
#[cfg(vgpio_k7)]
pub(crate) use kernel::sync::aref::ARef;
#[cfg(vgpio_k7)]
use kernel::sync::aref::AlwaysRefCounted;
#[cfg(vgpio_k612)]
pub(crate) use kernel::types::ARef;
#[cfg(vgpio_k612)]
use kernel::types::AlwaysRefCounted;

use super::bindings;
use super::sync::rcu;

/// A virtio driver: what the bus calls when a matching device comes and goes.
///
/// [`Driver::probe`] builds the driver's state (config read, queues found,
/// nothing sent: the device is not ready yet). The bus adapter attaches it
/// to the device, from when on [`Driver::vq_callback`] can run, marks the
/// device ready and calls [`Driver::init`], which may talk to the device. If
/// `init` fails, or when the device goes, [`Driver::remove`] runs with the
/// state still attached; then the adapter stops the device, deletes its
/// virtqueues (their handles revoked first) and drops the state.
#[vtable]
pub(crate) trait Driver: Send + Sync + Sized + 'static {
    /// The driver's name on the virtio bus (`/sys/bus/virtio/drivers/NAME`).
    const NAME: &'static CStr;
    /// The virtio device ID it binds.
    const DEVICE_ID: u32;
    /// The feature bits it can use.
    const FEATURES: &'static [u32];

    /// Build the state for a new device; its virtqueues, if it has any,
    /// are found with `vqs` (once: [`Device::find_vqs`] consumes it).
    fn probe(dev: &Device<Core>, vqs: FindVqs<'_, Self>) -> Result<impl PinInit<Self, Error>>;

    /// Bring the device up (it is ready: the driver may talk to it).
    fn init(&self, dev: &Device<Core>) -> Result;

    /// The device is going away (unbind, module unload, hot unplug), or
    /// `init` failed: take back what was given to the device.
    fn remove(&self, dev: &Device<Core>);

    /// Virtqueue `index` has used buffers (interrupt context).
    fn vq_callback(&self, index: usize);
}

/// The context of a [`Device`] in probe and remove: the device lock is
/// held, so the driver's binding cannot change meanwhile.
pub(crate) struct Core;
/// The context of a [`Device`] known to be bound to this driver.
pub(crate) struct Bound;
/// No guarantee beyond the device's memory being valid.
pub(crate) struct Normal;

/// A `struct virtio_device`, in a context `Ctx`.
///
/// # Invariants
///
/// The wrapped device is valid for the lifetime of any reference to this
/// type; in context [`Core`] the caller holds its device lock and the
/// device is bound to a driver registered by [`Registration`] or being
/// probed by it; in context [`Bound`] it is bound to such a driver.
#[repr(transparent)]
pub(crate) struct Device<Ctx = Normal>(Opaque<bindings::virtio_device>, PhantomData<Ctx>);

// SAFETY: a virtio device may be used from any thread; the C functions called
// through `Device` do their own locking.
unsafe impl Send for Device {}
// SAFETY: see `Send`; every method takes `&self` and the C side serializes.
unsafe impl Sync for Device {}

impl Deref for Device<Core> {
    type Target = Device<Bound>;

    fn deref(&self) -> &Device<Bound> {
        // SAFETY: same layout (`repr(transparent)`, the context is a
        // zero-sized marker); a device in probe or remove is bound (or
        // binding) to our driver.
        unsafe { &*core::ptr::from_ref(self).cast::<Device<Bound>>() }
    }
}

impl Deref for Device<Bound> {
    type Target = Device;

    fn deref(&self) -> &Device {
        // SAFETY: same layout; `Normal` asks for nothing more.
        unsafe { &*core::ptr::from_ref(self).cast::<Device>() }
    }
}

// SAFETY: get_device/put_device keep the embedded `struct device`, and with
// it the virtio device, alive while the count is not zero.
unsafe impl AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::get_device(self.dev()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller owns a count on the valid device.
        unsafe { bindings::put_device(obj.as_ref().dev()) };
    }
}

/// printk levels, as `KERN_*` strings.
#[cfg(vgpio_k612)]
pub(crate) mod level {
    use kernel::str::CStr;

    pub(crate) const ERR: &CStr = kernel::c_str!("\x013");
    pub(crate) const WARNING: &CStr = kernel::c_str!("\x014");
    pub(crate) const DEBUG: &CStr = kernel::c_str!("\x017");
}

impl<Ctx> Device<Ctx> {
    /// # Safety
    ///
    /// `ptr` must point to a valid virtio device that stays valid for `'a`
    /// and is in context `Ctx` for `'a` (see the type invariants).
    unsafe fn from_raw<'a>(ptr: *mut bindings::virtio_device) -> &'a Self {
        // SAFETY: `Device` is a transparent wrapper of `virtio_device`, and
        // the caller guarantees `ptr` is valid for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }

    /// The embedded `struct device`.
    pub(crate) fn dev(&self) -> *mut bindings::device {
        // SAFETY: by the type invariant the virtio device is valid; taking
        // the address of a field does not read it.
        unsafe { core::ptr::addr_of_mut!((*self.as_raw()).dev) }
    }

    /// The device's name, e.g. `virtio3`.
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: the device is valid (type invariant) and registered, so
        // dev_name() returns its NUL-terminated name, which lives as long as
        // the device.
        unsafe { CStr::from_char_ptr(bindings::vgpio_dev_name(self.dev())) }
    }

    /// Print a message prefixed with the driver and device name, like the C
    /// `dev_err()` family (7.x has the kernel crate's `dev_err!` family).
    #[cfg(vgpio_k612)]
    pub(crate) fn log(&self, level: &CStr, args: fmt::Arguments<'_>) {
        // SAFETY: the device is valid (type invariant); "%pA" takes a pointer
        // to `fmt::Arguments`, which lives on our stack for the whole call.
        unsafe {
            bindings::_dev_printk(
                level.as_char_ptr(),
                self.dev(),
                kernel::c_str!("%pA").as_char_ptr(),
                core::ptr::from_ref(&args).cast::<core::ffi::c_void>(),
            )
        };
    }

    /// Read a 16-bit field of the config space with one 16-bit access.
    pub(crate) fn cread16(&self, offset: u32) -> u16 {
        // SAFETY: the device is valid (type invariant); the transport checks
        // the offset against the config space size.
        unsafe { bindings::vgpio_cread16(self.as_raw(), offset) }
    }

    /// Read a 32-bit field of the config space with one 32-bit access.
    pub(crate) fn cread32(&self, offset: u32) -> u32 {
        // SAFETY: as for `cread16`.
        unsafe { bindings::vgpio_cread32(self.as_raw(), offset) }
    }

    /// Was the feature bit negotiated?
    pub(crate) fn has_feature(&self, bit: u32) -> bool {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::vgpio_has_feature(self.as_raw(), bit) }
    }

    /// The largest buffer the transport can map for the device in one
    /// piece (smaller than usual under swiotlb).
    pub(crate) fn max_dma_size(&self) -> usize {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::virtio_max_dma_size(self.as_raw()) }
    }

    /// A counted reference to the device, for state that outlives a call.
    pub(crate) fn get(&self) -> ARef<Device> {
        // SAFETY: same layout (`repr(transparent)`, the context is a
        // zero-sized marker); `Normal` asks for nothing more.
        ARef::from(unsafe { &*core::ptr::from_ref(self).cast::<Device>() })
    }

    /// Reset the device: it stops using every buffer the driver gave it.
    fn reset(&self) {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::virtio_reset_device(self.as_raw()) }
    }
}

/// The right to find a device's virtqueues, once, for driver `T`: the
/// adapter hands one to [`Driver::probe`]. (Finding them twice would delete
/// the first ones when the transport refuses the second call, and a queue
/// found for another driver type would call back into the wrong state.)
///
/// # Invariants
///
/// `vdev` is the device being probed by `T`'s adapter; nobody has found
/// its queues since this was made.
pub(crate) struct FindVqs<'a, T: Driver> {
    vdev: &'a Device<Core>,
    /// Where the adapter keeps the queues' set, to delete them itself.
    set: &'a mut Option<Arc<VqSet>>,
    _p: PhantomData<T>,
}

impl Device<Core> {
    /// Find the driver's virtqueues: the first always, the second if
    /// `second` (the callbacks go to [`Driver::vq_callback`] with index 0
    /// or 1). A queue marked `direct` puts each buffer's descriptors in the
    /// ring itself, never in an indirect table (which costs an allocation
    /// and a free per buffer, but lets a buffer take one ring entry).
    pub(crate) fn find_vqs<T: Driver, M0: Buffer, M1: Buffer>(
        &self,
        token: FindVqs<'_, T>,
        names: [&'static CStr; 2],
        direct: [bool; 2],
        second: bool,
    ) -> Result<(Virtqueue<M0>, Option<Virtqueue<M1>>)> {
        if !core::ptr::eq(token.vdev, self) {
            return Err(EINVAL);
        }
        // Made first, so that nothing can fail between finding the queues
        // and the set that deletes them.
        let set = Arc::new(
            VqSet {
                vdev: self.get(),
                live: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        let n = if second { 2 } else { 1 };
        let mut vqs = [core::ptr::null_mut::<bindings::virtqueue>(); 2];
        let mut cbs: [bindings::vq_callback_t; 2] =
            [Some(vq_callback::<T, 0>), Some(vq_callback::<T, 1>)];
        let cnames = [names[0].as_char_ptr(), names[1].as_char_ptr()];
        // SAFETY: the device is valid and being probed by `T`'s adapter, and
        // its queues were not found yet (the token's invariant, and the
        // token is used up here); the arrays hold `n` entries; the names are
        // 'static.
        to_result(unsafe {
            bindings::vgpio_find_vqs(
                self.as_raw(),
                n,
                vqs.as_mut_ptr(),
                cbs.as_mut_ptr(),
                cnames.as_ptr(),
                direct.as_ptr(),
            )
        })?;
        // INVARIANT: live until the adapter revokes them; it has the set.
        set.live.store(true, Ordering::Release);
        *token.set = Some(set.clone());
        let first = Virtqueue::new(vqs[0], &set)?;
        let second = if second {
            Some(Virtqueue::new(vqs[1], &set)?)
        } else {
            None
        };
        Ok((first, second))
    }

    /// Stop the device for good, for taking back the buffers it held: mark
    /// every virtqueue broken (their interrupts no longer call back,
    /// `get_buf` returns nothing), wait for callbacks already running to
    /// return (unlike a reset, this waits on every transport: virtio-mmio's
    /// reset does not), then reset it (it stops using every buffer).
    pub(crate) fn stop(&self) -> Stopped<'_> {
        // SAFETY: the device is valid (type invariant). Breaking only sets a
        // flag on each virtqueue of the device; the synchronization waits
        // for the transport's interrupt handlers (it may sleep: this is
        // remove's context).
        unsafe {
            bindings::virtio_break_device(self.as_raw());
            bindings::vgpio_synchronize_cbs(self.as_raw());
        }
        self.reset();
        // INVARIANT: reset just now; only the adapter makes a device ready,
        // in probe, before `Driver::init`.
        Stopped { vdev: self }
    }
}

/// Proof that a device was stopped and reset ([`Device::stop`]): it uses
/// none of the buffers it was given any more.
///
/// # Invariants
///
/// `vdev` was reset and has not been made ready since.
pub(crate) struct Stopped<'a> {
    vdev: &'a Device<Core>,
}

/// The virtqueues of one device, as their handles ([`Virtqueue`],
/// [`Notify`]) and the adapter share them. The adapter deletes them, once
/// the driver is done with the device (after remove, or a failed probe),
/// whatever handles are left: it revokes them first, and a handle then
/// does nothing. Every use of a handle is an RCU read-side section that
/// finds `live`; revocation clears it and waits for a grace period, so no
/// use is still running when the queues are deleted.
///
/// # Invariants
///
/// While `live`, the device's queues made by find_vqs exist.
struct VqSet {
    vdev: ARef<Device>,
    live: AtomicBool,
}

impl VqSet {
    /// Run `f` if the queues still exist, in an RCU read-side section
    /// (during which they go on existing).
    fn with_live<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        let _rcu = rcu::read_lock();
        self.live.load(Ordering::Acquire).then(f)
    }

    /// Stop the handles, wait for uses in progress, delete the queues.
    /// Sleeps.
    fn revoke_and_delete(&self) {
        if !self.live.swap(false, Ordering::AcqRel) {
            return;
        }
        // A use that found `live` ends within a grace period; later ones
        // find it clear.
        rcu::synchronize_rcu();
        self.vdev.reset();
        // SAFETY: the device is valid (the count); its queues exist (they
        // were live) and nothing uses them any more (above); after the
        // reset the device uses none of their buffers.
        unsafe { bindings::vgpio_del_vqs(self.vdev.as_raw()) };
    }
}

/// Log through a virtio [`Device`] at a given level (ERR, WARNING, DEBUG):
/// `dev_log!(vdev, ERR, "...")`, prefixed with the driver and device name.
#[cfg(vgpio_k612)]
macro_rules! dev_log {
    ($vdev:expr, $lvl:ident, $($arg:tt)*) => {
        $vdev.log($crate::virtio::level::$lvl, core::format_args!($($arg)*))
    };
}
/// Log through a virtio [`Device`] at a given level (ERR, WARNING, DEBUG):
/// `dev_log!(vdev, ERR, "...")`: the kernel crate's `dev_err!` family.
#[cfg(vgpio_k7)]
macro_rules! dev_log {
    ($vdev:expr, ERR, $($arg:tt)*) => { kernel::dev_err!($vdev, $($arg)*) };
    ($vdev:expr, WARNING, $($arg:tt)*) => { kernel::dev_warn!($vdev, $($arg)*) };
    ($vdev:expr, DEBUG, $($arg:tt)*) => { kernel::dev_dbg!($vdev, $($arg)*) };
}
pub(crate) use dev_log;

/// May one more line about a misbehaving device be logged? At most 10 per
/// 5 s for all devices together (the kernel crate has no rate-limited
/// printing; the kernel counts and reports what this suppressed).
pub(crate) fn log_ratelimit() -> bool {
    // SAFETY: the helper only touches its own static ratelimit state.
    unsafe { bindings::vgpio_log_ratelimit() }
}

/// `dev_log!` for a device's misbehaviour: rate-limited.
macro_rules! dev_log_bad {
    ($vdev:expr, $lvl:ident, $($arg:tt)*) => {
        if $crate::virtio::log_ratelimit() {
            $crate::virtio::dev_log!($vdev, $lvl, $($arg)*)
        }
    };
}
pub(crate) use dev_log_bad;

#[cfg(vgpio_k7)]
impl<Ctx> AsRef<kernel::device::Device> for Device<Ctx> {
    fn as_ref(&self) -> &kernel::device::Device {
        // SAFETY: the embedded `struct device` is valid for as long as the
        // virtio device (type invariant), so for the borrow of `self`; the
        // two crates' bindings of `struct device` are the same C type.
        unsafe { kernel::device::Device::from_raw(self.dev().cast()) }
    }
}

/// Declare a module whose one job is a virtio driver `T`: `module!` with a
/// [`Registration`] of `T` as the module.
macro_rules! module_virtio_driver {
    // (`tt`, not `literal`: module! wants the literal tokens themselves)
    (type: $type:ty, name: $name:tt, authors: [$author:tt],
     description: $desc:tt, license: $license:tt, alias: [$alias:tt] $(,)?) => {
        struct VirtioModule {
            _reg: $crate::virtio::Registration<$type>,
        }

        impl kernel::Module for VirtioModule {
            fn init(module: &'static kernel::ThisModule) -> kernel::error::Result<Self> {
                Ok(VirtioModule {
                    _reg: $crate::virtio::Registration::new(module)?,
                })
            }
        }

        // 6.12's module! takes one `author`, 7.x's a list of `authors`.
        #[cfg(vgpio_k612)]
        kernel::prelude::module! {
            type: VirtioModule,
            name: $name,
            author: $author,
            description: $desc,
            license: $license,
            alias: [$alias],
        }
        #[cfg(vgpio_k7)]
        kernel::prelude::module! {
            type: VirtioModule,
            name: $name,
            authors: [$author],
            description: $desc,
            license: $license,
            alias: [$alias],
        }

        // The module pointer for the driver's own registrations (6.12's
        // module! makes this static; 7.x's keeps it in a const).
        #[cfg(vgpio_k7)]
        static THIS_MODULE: kernel::ThisModule =
            <VirtioModule as kernel::ModuleMetadata>::THIS_MODULE;
    };
}
pub(crate) use module_virtio_driver;

/// What the bus holds: the C driver structure and its ID table, together.
#[repr(C)]
#[derive(Default)]
struct DriverBlock {
    drv: bindings::virtio_driver,
    ids: [bindings::virtio_device_id; 2],
}

/// A registered virtio driver; unregistered when dropped.
///
/// # Invariants
///
/// `block` was registered with `__register_virtio_driver` and is not moved or
/// freed until `unregister_virtio_driver` returns in `drop`.
pub(crate) struct Registration<T: Driver> {
    block: KBox<Opaque<DriverBlock>>,
    _p: PhantomData<T>,
}

// SAFETY: the registration is only touched at module init and exit.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: no `&self` method exists.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Register `T` with the virtio bus for `module`.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let block = KBox::new(Opaque::new(DriverBlock::default()), GFP_KERNEL)?;
        let p = block.get();
        // SAFETY: `p` points to the block we own exclusively; nothing else
        // knows it until it is registered below. The ID table and feature
        // table it points to live as long as the registration (the table in
        // the same allocation, the features in a `'static`).
        unsafe {
            (*p).ids[0] = bindings::virtio_device_id {
                device: T::DEVICE_ID,
                vendor: bindings::VIRTIO_DEV_ANY_ID,
            };
            (*p).drv.driver.name = T::NAME.as_char_ptr();
            (*p).drv.id_table = (*p).ids.as_ptr();
            (*p).drv.feature_table = T::FEATURES.as_ptr();
            (*p).drv.feature_table_size = T::FEATURES.len() as u32;
            (*p).drv.probe = Some(probe_callback::<T>);
            (*p).drv.remove = Some(remove_callback::<T>);
        }
        // SAFETY: the block is fully initialised and will neither move nor be
        // freed before `drop` unregisters it (type invariant).
        to_result(unsafe {
            bindings::__register_virtio_driver(&mut (*p).drv, module.as_ptr().cast())
        })?;
        Ok(Registration {
            block,
            _p: PhantomData,
        })
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new` (type invariant); this unbinds every
        // device, calling `remove_callback` for each, before returning.
        unsafe { bindings::unregister_virtio_driver(&mut (*self.block.get()).drv) };
    }
}

/// # Safety
///
/// Called by the virtio bus only, with a device of the driver registered by
/// a `Registration<T>`, its device lock held.
unsafe extern "C" fn probe_callback<T: Driver>(
    vdev: *mut bindings::virtio_device,
) -> core::ffi::c_int {
    from_result(|| {
        // SAFETY: the bus calls probe with a valid device, its lock held,
        // that stays valid at least until remove.
        let dev = unsafe { Device::<Core>::from_raw(vdev) };
        // A driver bound before may have left its state's address there
        // (the C gpio-virtio driver does): no callback may take it for ours.
        // SAFETY: `vdev` is valid; `priv` belongs to the driver being bound.
        unsafe { (*vdev).priv_ = core::ptr::null_mut() };
        let mut set = None;
        // INVARIANT: the device `T` probes; nobody found its queues yet.
        let vqs = FindVqs {
            vdev: dev,
            set: &mut set,
            _p: PhantomData,
        };
        let data = T::probe(dev, vqs)
            .and_then(|init| KBox::pin_init(init, GFP_KERNEL))
            .and_then(|data| {
                // (a copy: if this allocation fails, the set is still
                // here to be deleted below)
                Ok(KBox::new(
                    Attached {
                        data,
                        set: set.clone(),
                    },
                    GFP_KERNEL,
                )?)
            });
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                // The queues a failed probe found (the handles went with
                // the partly built state, or are dead now).
                if let Some(set) = set {
                    set.revoke_and_delete();
                }
                return Err(e);
            }
        };
        let ptr = data.into_foreign();
        // (6.12's `into_foreign` gives a `*const`, 7.x's a `*mut`)
        #[cfg(vgpio_k612)]
        let ptr = ptr.cast_mut();
        // SAFETY: `vdev` is valid; `priv` belongs to the bound driver. From
        // here on virtqueue callbacks find the state.
        unsafe { (*vdev).priv_ = ptr };
        // SAFETY: `ptr` came from `into_foreign` just above and is only
        // reclaimed below or in `remove_callback`.
        let data = unsafe { <KBox<Attached<T>> as ForeignOwnable>::borrow(ptr) }.data();
        // SAFETY: the device is valid; the driver's state is attached, so
        // the device may now be used (and call back).
        unsafe { bindings::vgpio_device_ready(vdev) };
        if let Err(e) = data.init(dev) {
            // A waiter killed during init may have left messages with the
            // device: remove takes them back before the queues go.
            data.remove(dev);
            // SAFETY: as in `remove_callback`; `data` is not used after this.
            unsafe { teardown::<T>(vdev) };
            return Err(e);
        }
        Ok(0)
    })
}

/// # Safety
///
/// Called by the virtio bus only, with a device `probe_callback` bound, its
/// device lock held.
unsafe extern "C" fn remove_callback<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: the bus calls remove with the device it probed successfully,
    // its lock held.
    let dev = unsafe { Device::<Core>::from_raw(vdev) };
    // SAFETY: `priv` holds the state from `into_foreign` in probe, not yet
    // reclaimed (that happens in `teardown`, below).
    unsafe { <KBox<Attached<T>> as ForeignOwnable>::borrow((*vdev).priv_) }
        .data()
        .remove(dev);
    // SAFETY: `vdev` is the bound device with the state attached.
    unsafe { teardown::<T>(vdev) };
}

/// Stop the device, detach the state, delete the virtqueues (their handles
/// revoked first), then drop the state.
///
/// # Safety
///
/// `vdev` is valid, its device lock held, and its `priv` holds state from
/// `into_foreign` of `KBox<Attached<T>>`, which this consumes.
unsafe fn teardown<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: `vdev` is valid, in remove or probe (caller).
    let dev = unsafe { Device::<Core>::from_raw(vdev) };
    // No callback runs once this returns, nor any later: nothing borrows
    // the state any more when it is dropped.
    dev.stop();
    // SAFETY: `priv` holds the state (caller); it is detached before it is
    // dropped, and nothing else reads it now.
    let attached = unsafe {
        let a = <KBox<Attached<T>> as ForeignOwnable>::from_foreign((*vdev).priv_);
        (*vdev).priv_ = core::ptr::null_mut();
        a
    };
    if let Some(set) = &attached.set {
        set.revoke_and_delete();
    }
    drop(attached);
}

/// What the adapter attaches to a bound device: the driver's state, and the
/// device's virtqueues, which the adapter deletes.
struct Attached<T: Driver> {
    data: Pin<KBox<T>>,
    set: Option<Arc<VqSet>>,
}

impl<T: Driver> Attached<T> {
    fn data(&self) -> &T {
        self.data.as_ref().get_ref()
    }
}

/// # Safety
///
/// Called by virtio only, for a virtqueue found by `Device::find_vqs` for
/// a `T` driver's device (queue `I`).
unsafe extern "C" fn vq_callback<T: Driver, const I: usize>(vq: *mut bindings::virtqueue) {
    // SAFETY: virtio calls this with a live virtqueue of a live device.
    let vdev = unsafe { (*vq).vdev };
    // SAFETY: as above; `priv` is read once.
    let ptr = unsafe { (*vdev).priv_ };
    if ptr.is_null() {
        return;
    }
    // SAFETY: a non-null `priv` is the attached state, which `teardown`
    // detaches only after stopping the device's callbacks.
    unsafe { <KBox<Attached<T>> as ForeignOwnable>::borrow(ptr) }
        .data()
        .vq_callback(I);
}

/// A notification a device asked for ([`Virtqueue::kick_prepare`]).
///
/// # Invariants
///
/// `vq` is a virtqueue of `set`'s device, which exists while `set` is live.
#[must_use = "the device waits for this notification"]
pub(crate) struct Notify {
    vq: NonNull<bindings::virtqueue>,
    set: Arc<VqSet>,
}

// SAFETY: virtqueue_notify may be called from any thread, without the lock
// that serializes the queue's other operations.
unsafe impl Send for Notify {}

impl Notify {
    /// Tell the device (no lock needed; nothing once the queues are gone).
    pub(crate) fn notify(self) {
        self.set.with_live(|| {
            // SAFETY: the queue exists while the set is live (type
            // invariant, `with_live`); virtqueue_notify needs no
            // serialization with the queue's other operations.
            unsafe { bindings::virtqueue_notify(self.vq.as_ptr()) };
        });
    }
}

/// What the device reads and writes for one message: a device-readable part
/// and a device-writable part, both inside the message's own memory.
pub(crate) trait Buffer {
    fn readable(&self) -> &[u8];
    fn writable(&mut self) -> &mut [u8];
}

/// A virtqueue whose buffers are `KBox<M>`s: while a message is queued, the
/// queue owns it, and it comes back out of [`Virtqueue::get_buf`] or
/// [`Virtqueue::detach_unused`]. A message cannot be reused or freed while
/// the device may still write to it. All methods take `&mut self`: keep the
/// queue behind the one lock that serializes its operations. Once the
/// adapter has deleted the device's queues (after the driver's remove), a
/// handle still held does nothing: `add` fails with `ENODEV`, the rest find
/// nothing.
///
/// # Invariants
///
/// `vq` is a virtqueue of `set`'s device, which exists while `set` is live.
/// Every token in it was produced by `KBox::<M>::into_raw` in
/// [`Virtqueue::add`].
pub(crate) struct Virtqueue<M: Buffer> {
    vq: NonNull<bindings::virtqueue>,
    set: Arc<VqSet>,
    _p: PhantomData<KBox<M>>,
}

// SAFETY: virtqueue functions may be called from any thread, serialized by
// the caller (every method takes `&mut self`); the set is shared by counted
// references.
unsafe impl<M: Buffer + Send> Send for Virtqueue<M> {}

impl<M: Buffer> Virtqueue<M> {
    /// A queue find_vqs just made for `set`'s device (its callback is
    /// already the driver's, its tokens will all come from `add`).
    fn new(vq: *mut bindings::virtqueue, set: &Arc<VqSet>) -> Result<Self> {
        // INVARIANT: a queue of the device, deleted only after the set is
        // revoked; no token yet.
        Ok(Virtqueue {
            vq: NonNull::new(vq).ok_or(ENODEV)?,
            set: set.clone(),
            _p: PhantomData,
        })
    }

    /// Queue `msg`; on failure (the ring is full: `ENOSPC`; the queues are
    /// gone: `ENODEV`) it is handed back.
    pub(crate) fn add(&mut self, mut msg: KBox<M>) -> core::result::Result<(), (Error, KBox<M>)> {
        let mut out_sg = bindings::scatterlist::default();
        let mut in_sg = bindings::scatterlist::default();
        let r = msg.readable();
        // SAFETY: the slices point into memory `msg` owns; it is handed to
        // the queue below and not touched again until the queue gives it
        // back, so the device has it to itself.
        unsafe { bindings::sg_init_one(&mut out_sg, r.as_ptr().cast(), r.len() as u32) };
        let w = msg.writable();
        // SAFETY: as above.
        unsafe { bindings::sg_init_one(&mut in_sg, w.as_mut_ptr().cast(), w.len() as u32) };
        let mut sgs = [
            core::ptr::from_mut(&mut out_sg),
            core::ptr::from_mut(&mut in_sg),
        ];
        let token = KBox::into_raw(msg);
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`); the scatterlists are copied into the ring before
        // the call returns; GFP_ATOMIC because callers hold a spinlock.
        let ret = self.set.with_live(|| unsafe {
            bindings::virtqueue_add_sgs(
                vq,
                sgs.as_mut_ptr(),
                1,
                1,
                token.cast(),
                kernel::bindings::GFP_ATOMIC,
            )
        });
        let ret = ret.unwrap_or(ENODEV.to_errno());
        if ret != 0 {
            // SAFETY: the queue did not take the token; it is ours again.
            return Err((Error::from_errno(ret), unsafe { KBox::from_raw(token) }));
        }
        Ok(())
    }

    /// Tell the device about newly added buffers.
    pub(crate) fn kick(&mut self) {
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`).
        self.set
            .with_live(|| unsafe { bindings::virtqueue_kick(vq) });
    }

    /// The first half of [`Virtqueue::kick`], under the queue's lock: does
    /// the device want to be told about the buffers added? The notification
    /// itself (a VM exit, usually) can then be sent with the lock dropped.
    pub(crate) fn kick_prepare(&mut self) -> Option<Notify> {
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`); serialized with `add` by `&mut self`, as
        // virtqueue_kick_prepare requires.
        let want = self
            .set
            .with_live(|| unsafe { bindings::virtqueue_kick_prepare(vq) });
        // INVARIANT: the same queue and set.
        want.unwrap_or(false).then(|| Notify {
            vq: self.vq,
            set: self.set.clone(),
        })
    }

    /// A message the device is done with, and the length it says it wrote.
    pub(crate) fn get_buf(&mut self) -> Option<(KBox<M>, u32)> {
        let mut len = 0u32;
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`).
        let token = self
            .set
            .with_live(|| unsafe { bindings::virtqueue_get_buf(vq, &mut len) })?;
        if token.is_null() {
            return None;
        }
        // SAFETY: every token came from `KBox::into_raw` in `add` (type
        // invariant) and virtio returns each one once.
        Some((unsafe { KBox::from_raw(token.cast::<M>()) }, len))
    }

    /// Take back a message the stopped device will never use.
    pub(crate) fn detach_unused(&mut self, stopped: &Stopped<'_>) -> Option<KBox<M>> {
        // Only the queue's own device's reset counts.
        if !core::ptr::eq(self.set.vdev.as_raw(), stopped.vdev.as_raw()) {
            return None;
        }
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`); its device was reset and not made ready again
        // (`Stopped`'s invariant), as virtqueue_detach_unused_buf requires.
        let token = self
            .set
            .with_live(|| unsafe { bindings::virtqueue_detach_unused_buf(vq) })?;
        if token.is_null() {
            return None;
        }
        // SAFETY: as in `get_buf`.
        Some(unsafe { KBox::from_raw(token.cast::<M>()) })
    }

    /// The ring's size, in descriptors (0 once the queues are gone).
    pub(crate) fn size(&self) -> u32 {
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`).
        self.set
            .with_live(|| unsafe { bindings::virtqueue_get_vring_size(vq) })
            .unwrap_or(0)
    }

    /// How many more messages fit (one descriptor each with indirect
    /// descriptors, else two; 0 once the queues are gone).
    pub(crate) fn num_free(&self) -> u32 {
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`); reading num_free is what virtqueue_get_vring_size's
        // callers do too.
        self.set
            .with_live(|| unsafe { (*vq).num_free })
            .unwrap_or(0)
    }
}
