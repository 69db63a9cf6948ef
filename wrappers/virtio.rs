// SPDX-License-Identifier: GPL-2.0

//! Virtio driver registration and virtio device access.
//!
//! C headers: `include/linux/virtio.h`, `include/linux/virtio_config.h`.

#[cfg(vgpio_k612)]
use core::fmt;
use core::marker::PhantomData;

use kernel::error::{from_result, to_result};
use kernel::prelude::*;
use kernel::types::{ForeignOwnable, Opaque};

use super::bindings;

/// A virtio driver: what the bus calls when a matching device comes and goes.
///
/// Probe is in two steps so that virtqueue callbacks can always find the
/// driver's state: [`Driver::probe`] builds the state (config read, queues
/// found, nothing sent yet); the bus glue then attaches it to the device and
/// calls [`Driver::start`], which may mark the device ready and talk to it.
/// On removal, [`Driver::remove`] runs with the state still attached; then
/// the glue resets the device, deletes its virtqueues and drops the state.
pub(crate) trait Driver {
    /// The driver's name on the virtio bus (`/sys/bus/virtio/drivers/NAME`).
    const NAME: &'static CStr;
    /// The virtio device ID it binds.
    const DEVICE_ID: u32;
    /// The feature bits it can use.
    const FEATURES: &'static [u32];
    /// Per-device state, alive from probe until remove.
    type Data: Send + Sync + 'static;

    /// Build the state for a new device.
    fn probe(vdev: &Device) -> Result<Pin<KBox<Self::Data>>>;

    /// Bring the device up. On error the glue calls [`Driver::remove`] (so
    /// the driver takes back what it gave the device), then resets the
    /// device and drops the state.
    fn start(vdev: &Device, data: &Self::Data) -> Result;

    /// The device is going away (unbind, module unload, hot unplug).
    fn remove(vdev: &Device, data: &Self::Data);

    /// Virtqueue `index` has used buffers (interrupt context).
    fn vq_done(data: &Self::Data, index: usize);
}

/// A `struct virtio_device`.
///
/// # Invariants
///
/// The wrapped device is bound to a driver registered by [`Registration`]:
/// it stays valid for as long as the reference the bus gave the driver.
#[repr(transparent)]
pub(crate) struct Device(Opaque<bindings::virtio_device>);

// SAFETY: a virtio device may be used from any thread; the C functions called
// through `Device` do their own locking.
unsafe impl Send for Device {}
// SAFETY: see `Send`; every method takes `&self` and the C side serializes.
unsafe impl Sync for Device {}

/// printk levels, as `KERN_*` strings.
#[cfg(vgpio_k612)]
pub(crate) mod level {
    use kernel::str::CStr;

    pub(crate) const ERR: &CStr = kernel::c_str!("\x013");
    pub(crate) const WARNING: &CStr = kernel::c_str!("\x014");
    pub(crate) const DEBUG: &CStr = kernel::c_str!("\x017");
}

impl Device {
    /// # Safety
    ///
    /// `ptr` must point to a valid virtio device that stays valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::virtio_device) -> &'a Device {
        // SAFETY: `Device` is a transparent wrapper of `virtio_device`, and
        // the caller guarantees `ptr` is valid for `'a`.
        unsafe { &*ptr.cast::<Device>() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::virtio_device {
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

    /// Let the device process the driver's buffers from now on.
    pub(crate) fn ready(&self) {
        // SAFETY: the device is valid (type invariant); called from probe.
        unsafe { bindings::vgpio_device_ready(self.as_raw()) }
    }

    /// Stop the driver's virtqueue callbacks: mark every virtqueue broken
    /// (their interrupts no longer call back, `get_buf` returns nothing),
    /// then wait for callbacks already running to return. Unlike a reset,
    /// this waits on every transport (virtio-mmio's reset does not).
    pub(crate) fn stop_callbacks(&self) {
        // SAFETY: the device is valid (type invariant). Breaking only sets a
        // flag on each virtqueue of the device; the synchronization waits
        // for the transport's interrupt handlers (it may sleep: callers are
        // in process context, as remove is).
        unsafe {
            bindings::virtio_break_device(self.as_raw());
            bindings::vgpio_synchronize_cbs(self.as_raw());
        }
    }

    /// Reset the device: it stops using every buffer the driver gave it.
    pub(crate) fn reset(&self) {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::virtio_reset_device(self.as_raw()) }
    }
}

impl Device {
    /// Find the driver's virtqueues: the first always, the second if
    /// `second` (the callbacks go to [`Driver::vq_done`] with index 0 or 1).
    /// A queue marked `direct` puts each buffer's descriptors in the ring
    /// itself, never in an indirect table (which costs an allocation and a
    /// free per buffer, but lets a buffer take one ring entry).
    pub(crate) fn find_vqs<T: Driver, M0: Buffer, M1: Buffer>(
        &self,
        names: [&'static CStr; 2],
        direct: [bool; 2],
        second: bool,
    ) -> Result<(Virtqueue<M0>, Option<Virtqueue<M1>>)> {
        let n = if second { 2 } else { 1 };
        let mut vqs = [core::ptr::null_mut::<bindings::virtqueue>(); 2];
        let mut cbs: [bindings::vq_callback_t; 2] =
            [Some(vq_callback::<T, 0>), Some(vq_callback::<T, 1>)];
        let cnames = [names[0].as_char_ptr(), names[1].as_char_ptr()];
        // SAFETY: the device is valid (type invariant); the arrays hold `n`
        // entries; the names are 'static.
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
        let first = Virtqueue {
            vq: core::ptr::NonNull::new(vqs[0]).ok_or(ENODEV)?,
            _p: PhantomData,
        };
        let second = if second {
            Some(Virtqueue {
                vq: core::ptr::NonNull::new(vqs[1]).ok_or(ENODEV)?,
                _p: PhantomData,
            })
        } else {
            None
        };
        Ok((first, second))
    }

    /// A counted reference to this device, for state that outlives a call.
    pub(crate) fn get(&self) -> DeviceRef {
        // SAFETY: the device is valid (type invariant); the count taken here
        // is dropped in `DeviceRef::drop`.
        unsafe { bindings::get_device(self.dev()) };
        DeviceRef(core::ptr::NonNull::from(self))
    }
}

/// A counted reference to a virtio [`Device`] (`get_device`/`put_device`).
///
/// # Invariants
///
/// Holds one reference on the device's `struct device`, so the memory stays
/// valid for as long as this lives.
pub(crate) struct DeviceRef(core::ptr::NonNull<Device>);

// SAFETY: device references may move between threads; `Device` is `Sync`.
unsafe impl Send for DeviceRef {}
// SAFETY: see `Send`.
unsafe impl Sync for DeviceRef {}

impl core::ops::Deref for DeviceRef {
    type Target = Device;

    fn deref(&self) -> &Device {
        // SAFETY: the reference keeps the device alive (type invariant).
        unsafe { self.0.as_ref() }
    }
}

impl Drop for DeviceRef {
    fn drop(&mut self) {
        // SAFETY: drops the reference taken in `Device::get`.
        unsafe { bindings::put_device(self.0.as_ref().dev()) };
    }
}

/// May one more line about a misbehaving device be logged? At most 10 per
/// 5 s for all devices together (the kernel crate has no rate-limited
/// printing; the kernel counts and reports what this suppressed).
pub(crate) fn log_ratelimit() -> bool {
    // SAFETY: the helper only touches its own static ratelimit state.
    unsafe { bindings::vgpio_log_ratelimit() }
}

#[cfg(vgpio_k7)]
impl AsRef<kernel::device::Device> for Device {
    fn as_ref(&self) -> &kernel::device::Device {
        // SAFETY: the embedded `struct device` is valid for as long as the
        // virtio device (type invariant), so for the borrow of `self`; the
        // two crates' bindings of `struct device` are the same C type.
        unsafe { kernel::device::Device::from_raw(self.dev().cast()) }
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

/// `dev_log!` for a device's misbehaviour: rate-limited.
macro_rules! dev_log_bad {
    ($vdev:expr, $lvl:ident, $($arg:tt)*) => {
        if $crate::virtio::log_ratelimit() {
            $crate::virtio::dev_log!($vdev, $lvl, $($arg)*)
        }
    };
}
pub(crate) use dev_log_bad;

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
/// a `Registration<T>`.
unsafe extern "C" fn probe_callback<T: Driver>(
    vdev: *mut bindings::virtio_device,
) -> core::ffi::c_int {
    from_result(|| {
        // SAFETY: the bus calls probe with a valid device that stays valid
        // at least until remove.
        let dev = unsafe { Device::from_raw(vdev) };
        let data = T::probe(dev).inspect_err(|_| {
            // SAFETY: `vdev` is valid; queues a failed probe found are
            // deleted here (the state holding them is already dropped).
            unsafe { reset_and_del_vqs(vdev) }
        })?;
        let ptr = data.into_foreign();
        // (6.12's `into_foreign` gives a `*const`, 7.x's a `*mut`)
        #[cfg(vgpio_k612)]
        let ptr = ptr.cast_mut();
        // SAFETY: `vdev` is valid; `priv` belongs to the bound driver. From
        // here on virtqueue callbacks find the state.
        unsafe { (*vdev).priv_ = ptr };
        // SAFETY: `ptr` came from `into_foreign` just above and is only
        // reclaimed below or in `remove_callback`.
        let data = unsafe { <Pin<KBox<T::Data>> as ForeignOwnable>::borrow(ptr) }.get_ref();
        if let Err(e) = T::start(dev, data) {
            // A waiter killed during start may have left messages with the
            // device: remove takes them back before the queues go.
            T::remove(dev, data);
            // SAFETY: as in `remove_callback`; `data` is not used after this.
            unsafe { teardown::<T>(vdev) };
            return Err(e);
        }
        Ok(0)
    })
}

/// # Safety
///
/// Called by the virtio bus only, with a device `probe_callback` bound.
unsafe extern "C" fn remove_callback<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: the bus calls remove with the device it probed successfully.
    let dev = unsafe { Device::from_raw(vdev) };
    // SAFETY: `priv` holds the state from `into_foreign` in probe, not yet
    // reclaimed (that happens in `teardown`, below).
    T::remove(
        dev,
        unsafe { <Pin<KBox<T::Data>> as ForeignOwnable>::borrow((*vdev).priv_) }.get_ref(),
    );
    // SAFETY: `vdev` is the bound device with the state attached.
    unsafe { teardown::<T>(vdev) };
}

/// Reset the device, delete its virtqueues, then detach and drop the state.
///
/// # Safety
///
/// `vdev` is valid and its `priv` holds state from `into_foreign` of
/// `Pin<KBox<T::Data>>`, which this consumes.
unsafe fn teardown<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: `vdev` is valid (caller). After the reset the device uses no
    // buffer and raises no interrupt; after del_vqs no callback can run, so
    // nothing borrows the state any more when it is dropped.
    unsafe {
        reset_and_del_vqs(vdev);
        let data = <Pin<KBox<T::Data>> as ForeignOwnable>::from_foreign((*vdev).priv_);
        (*vdev).priv_ = core::ptr::null_mut();
        drop(data);
    }
}

/// # Safety
///
/// `vdev` is a valid virtio device bound to this driver.
unsafe fn reset_and_del_vqs(vdev: *mut bindings::virtio_device) {
    // SAFETY: `vdev` is valid (caller); del_vqs runs only if find_vqs put
    // queues on the device's list.
    unsafe {
        bindings::virtio_reset_device(vdev);
        let head = core::ptr::addr_of_mut!((*vdev).vqs);
        if !(*head).next.is_null() && (*head).next != head {
            bindings::vgpio_del_vqs(vdev);
        }
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
    // detaches only after del_vqs, when no callback runs any more.
    T::vq_done(
        unsafe { <Pin<KBox<T::Data>> as ForeignOwnable>::borrow(ptr) }.get_ref(),
        I,
    );
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
/// queue behind the one lock that serializes its operations.
///
/// # Invariants
///
/// `vq` is a live virtqueue of a bound device until the glue deletes the
/// queues (after [`Driver::remove`]); every token in it was produced by
/// `KBox::<M>::into_raw` in [`Virtqueue::add`].
pub(crate) struct Virtqueue<M: Buffer> {
    vq: core::ptr::NonNull<bindings::virtqueue>,
    _p: PhantomData<KBox<M>>,
}

// SAFETY: virtqueue functions may be called from any thread, serialized by
// the caller (every method takes `&mut self`).
unsafe impl<M: Buffer + Send> Send for Virtqueue<M> {}

impl<M: Buffer> Virtqueue<M> {
    /// Queue `msg`; on failure (the ring is full: `ENOSPC`) it is handed back.
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
        // SAFETY: `vq` is live (type invariant); the scatterlists are copied
        // into the ring before the call returns; GFP_ATOMIC because callers
        // hold a spinlock.
        let ret = unsafe {
            bindings::virtqueue_add_sgs(
                self.vq.as_ptr(),
                sgs.as_mut_ptr(),
                1,
                1,
                token.cast(),
                kernel::bindings::GFP_ATOMIC,
            )
        };
        if ret != 0 {
            // SAFETY: the queue did not take the token; it is ours again.
            return Err((Error::from_errno(ret), unsafe { KBox::from_raw(token) }));
        }
        Ok(())
    }

    /// Tell the device about newly added buffers.
    pub(crate) fn kick(&mut self) {
        // SAFETY: `vq` is live (type invariant).
        unsafe { bindings::virtqueue_kick(self.vq.as_ptr()) };
    }

    /// A message the device is done with, and the length it says it wrote.
    pub(crate) fn get_buf(&mut self) -> Option<(KBox<M>, u32)> {
        let mut len = 0u32;
        // SAFETY: `vq` is live (type invariant).
        let token = unsafe { bindings::virtqueue_get_buf(self.vq.as_ptr(), &mut len) };
        if token.is_null() {
            return None;
        }
        // SAFETY: every token came from `KBox::into_raw` in `add` (type
        // invariant) and virtio returns each one once.
        Some((unsafe { KBox::from_raw(token.cast::<M>()) }, len))
    }

    /// After a device reset: take back a message the device will never use.
    pub(crate) fn detach_unused(&mut self) -> Option<KBox<M>> {
        // SAFETY: `vq` is live (type invariant); callers reset the device
        // first, as virtqueue_detach_unused_buf requires.
        let token = unsafe { bindings::virtqueue_detach_unused_buf(self.vq.as_ptr()) };
        if token.is_null() {
            return None;
        }
        // SAFETY: as in `get_buf`.
        Some(unsafe { KBox::from_raw(token.cast::<M>()) })
    }

    /// How many more messages fit (one descriptor each with indirect
    /// descriptors, else two).
    pub(crate) fn num_free(&self) -> u32 {
        // SAFETY: `vq` is live (type invariant); reading num_free is what
        // virtqueue_get_vring_size's callers do too.
        unsafe { (*self.vq.as_ptr()).num_free }
    }
}
