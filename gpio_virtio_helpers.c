// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line copies of static inline kernel functions for the Rust
 * virtio-gpio driver (see gpio_virtio_helpers.h).
 */

#include <linux/sched/signal.h>
#include <xen/xen.h>

#include "gpio_virtio_helpers.h"

u16 vgpio_cread16(struct virtio_device *vdev, unsigned int offset)
{
	return virtio_cread16(vdev, offset);
}

u32 vgpio_cread32(struct virtio_device *vdev, unsigned int offset)
{
	return virtio_cread32(vdev, offset);
}

bool vgpio_has_feature(const struct virtio_device *vdev, unsigned int fbit)
{
	return virtio_has_feature(vdev, fbit);
}

void vgpio_device_ready(struct virtio_device *vdev)
{
	virtio_device_ready(vdev);
}

void vgpio_synchronize_cbs(struct virtio_device *vdev)
{
	virtio_synchronize_cbs(vdev);
}

void vgpio_init_irq_work(struct irq_work *work, void (*func)(struct irq_work *))
{
	init_irq_work(work, func);
}

/*
 * Does the ring map its buffers (the DMA API, or 7.x's map ops: VDUSE)? The
 * ring's own test (vring_use_dma_api, 7.x's vring_use_map_api) is static:
 * the same test, and the exported query, either saying yes is enough.
 */
bool vgpio_vq_maps(struct virtqueue *vq)
{
	return virtqueue_dma_dev(vq) || !virtio_has_dma_quirk(vq->vdev) || xen_domain();
}

void vgpio_del_vqs(struct virtio_device *vdev)
{
	vdev->config->del_vqs(vdev);
}

/*
 * What a misbehaving device does is logged, but a device that misbehaves on
 * every answer must not flood the log: at most 10 lines per 5 s, for all
 * devices together (the kernel counts and reports what it suppressed).
 */
static DEFINE_RATELIMIT_STATE(vgpio_log_rs, 5 * HZ, 10);

bool vgpio_log_ratelimit(void)
{
	return __ratelimit(&vgpio_log_rs);
}

int vgpio_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
		   struct virtqueue *vqs[], vq_callback_t *callbacks[],
		   const char *const names[], const bool direct[])
{
	struct virtqueue_info info[2] = {};
	unsigned int i;

	if (nvqs > ARRAY_SIZE(info))
		return -EINVAL;
	for (i = 0; i < nvqs; i++) {
		info[i].name = names[i];
		info[i].callback = callbacks[i];
		/* a queue with a context per buffer never uses indirect tables */
		info[i].ctx = direct[i];
	}
	return virtio_find_vqs(vdev, nvqs, vqs, info, NULL);
}

void vgpio_raw_spin_lock_init(raw_spinlock_t *lock, const char *name,
			      struct lock_class_key *key)
{
	raw_spin_lock_init(lock);
	lockdep_set_class_and_name(lock, key, name);
}

unsigned long vgpio_raw_spin_lock_irqsave(raw_spinlock_t *lock)
{
	unsigned long flags;

	raw_spin_lock_irqsave(lock, flags);
	return flags;
}

void vgpio_raw_spin_unlock_irqrestore(raw_spinlock_t *lock, unsigned long flags)
{
	raw_spin_unlock_irqrestore(lock, flags);
}

#ifdef VGPIO_K7
/*
 * 7.x: the raw lock is a kernel::sync::lock::Backend, which also wants these.
 * Its spinlock_t locks are the kernel crate's SpinLockIrq, taken with
 * spin_lock_irq_disable() (interrupts off, counted per CPU): a wait under one
 * (below) drops and retakes it the same way, as the crate's CondVar does.
 */
bool vgpio_raw_spin_trylock_irqsave(raw_spinlock_t *lock, unsigned long *flags)
{
	return raw_spin_trylock_irqsave(lock, *flags);
}

void vgpio_raw_spin_assert_is_held(raw_spinlock_t *lock)
{
	lockdep_assert_held(lock);
}


/*
 * The sleep of the two waits below, the task's state set: drop @lock, call
 * @before, sleep (at most *@timeout jiffies, lowered by the time slept, if
 * @timeout), take @lock again.
 */
static void sleep_dropping(spinlock_t *lock, long *timeout, void (*before)(void *), void *arg)
{
	spin_unlock_irq_enable(lock);
	if (before)
		before(arg);
	if (timeout)
		*timeout = schedule_timeout(*timeout);
	else
		schedule();
	spin_lock_irq_disable(lock);
}

/*
 * Called with @lock held (spin_lock_irq_disable): sleep until woken up or
 * killed, on @var's hashed wait queue (only wake_up_var(@var) wakes it: the
 * kernel's wait_var_event family), with @lock dropped while asleep; returns
 * with it held again. With @timeout, asleep for at most *@timeout jiffies,
 * which it lowers by the time slept: -ETIMEDOUT when none is left. The
 * caller checked its condition under @lock, and wakers change the condition
 * under @lock before waking @var, so no wake-up is lost. (The crate's
 * CondVar has neither a killable nor a keyed wait.) @before, if not NULL,
 * is called with @arg once @lock is dropped, before the task sleeps, if it
 * sleeps (it must not sleep itself): work that wakes the waker, such as a
 * notification to a device, done with the task already on the wait queue.
 */
int vgpio_wait_var_killable_irq(void *var, spinlock_t *lock, long *timeout,
				void (*before)(void *), void *arg)
{
	struct wait_bit_queue_entry wbq;
	struct wait_queue_head *wq = __var_waitqueue(var);
	long ret;

	if (timeout && *timeout <= 0)
		return -ETIMEDOUT;
	init_wait_var_entry(&wbq, var, 0);
	ret = prepare_to_wait_event(wq, &wbq.wq_entry, TASK_KILLABLE);
	if (!ret)
		sleep_dropping(lock, timeout, before, arg);
	finish_wait(wq, &wbq.wq_entry);
	return ret;
}

/*
 * Called with @lock held (spin_lock_irq_disable), after the caller made
 * itself known to its one waker under @lock (the waker wakes it with
 * wake_up_process()): sleep, killably, until woken, with @lock dropped while
 * asleep; returns with it held again. No wait queue: the task's state is set
 * while @lock is still held, so a wake-up from a waker that takes @lock is
 * not lost. With @timeout, asleep for at most *@timeout jiffies, which it
 * lowers by the time slept: -ETIMEDOUT when none is left. @before, if not
 * NULL, is called with @arg once @lock is dropped, before the task sleeps,
 * if it sleeps (it must not sleep itself: the task's state is set).
 */
int vgpio_sleep_killable_irq(spinlock_t *lock, long *timeout,
			     void (*before)(void *), void *arg)
{
	if (timeout && *timeout <= 0)
		return -ETIMEDOUT;
	set_current_state(TASK_KILLABLE);
	if (signal_pending_state(TASK_KILLABLE, current)) {
		__set_current_state(TASK_RUNNING);
		return -ERESTARTSYS;
	}
	sleep_dropping(lock, timeout, before, arg);
	__set_current_state(TASK_RUNNING);
	return 0;
}

#else /* 6.12: what its kernel crate lacks */

const char *vgpio_dev_name(const struct device *dev)
{
	return dev_name(dev);
}

void vgpio_wake_up_var(void *var)
{
	wake_up_var(var);
}

void vgpio_spin_lock_init(spinlock_t *lock, const char *name, struct lock_class_key *key)
{
	spin_lock_init(lock);
	lockdep_set_class_and_name(lock, key, name);
}

unsigned long vgpio_spin_lock_irqsave(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

void vgpio_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

void vgpio_init_waitqueue_head(struct wait_queue_head *wq, const char *name,
			       struct lock_class_key *key)
{
	__init_waitqueue_head(wq, name, key);
}

/*
 * Called with @lock held (irqsave, @flags): sleep, not interruptibly, until
 * woken up, with @lock dropped while asleep; returns with it held again. The
 * caller checked its condition under @lock, and wakers change the condition
 * under @lock before waking @wq, so no wake-up is lost.
 */
void vgpio_wait_unlocked(struct wait_queue_head *wq, spinlock_t *lock,
			 unsigned long *flags)
{
	DEFINE_WAIT(wait);

	prepare_to_wait(wq, &wait, TASK_UNINTERRUPTIBLE);
	spin_unlock_irqrestore(lock, *flags);
	schedule();
	spin_lock_irqsave(lock, *flags);
	finish_wait(wq, &wait);
}

/* As the 7.x one, with @lock taken irqsave (@flags). */
static void sleep_dropping(spinlock_t *lock, unsigned long *flags, long *timeout,
			   void (*before)(void *), void *arg)
{
	spin_unlock_irqrestore(lock, *flags);
	if (before)
		before(arg);
	if (timeout)
		*timeout = schedule_timeout(*timeout);
	else
		schedule();
	spin_lock_irqsave(lock, *flags);
}

/*
 * As vgpio_wait_unlocked, but killable and on @var's hashed wait queue (only
 * wake_up_var(@var) wakes it: the kernel's wait_var_event family). With
 * @timeout, asleep for at most *@timeout jiffies, which it lowers by the
 * time slept: -ETIMEDOUT when none is left. @before as for
 * vgpio_wait_var_killable_irq.
 */
int vgpio_wait_var_killable_unlocked(void *var, spinlock_t *lock, unsigned long *flags,
				     long *timeout, void (*before)(void *), void *arg)
{
	struct wait_bit_queue_entry wbq;
	struct wait_queue_head *wq = __var_waitqueue(var);
	long ret;

	if (timeout && *timeout <= 0)
		return -ETIMEDOUT;
	init_wait_var_entry(&wbq, var, 0);
	ret = prepare_to_wait_event(wq, &wbq.wq_entry, TASK_KILLABLE);
	if (!ret)
		sleep_dropping(lock, flags, timeout, before, arg);
	finish_wait(wq, &wbq.wq_entry);
	return ret;
}

/*
 * As vgpio_sleep_killable_irq, with @lock taken irqsave (@flags).
 */
int vgpio_sleep_killable_unlocked(spinlock_t *lock, unsigned long *flags, long *timeout,
				  void (*before)(void *), void *arg)
{
	if (timeout && *timeout <= 0)
		return -ETIMEDOUT;
	set_current_state(TASK_KILLABLE);
	if (signal_pending_state(TASK_KILLABLE, current)) {
		__set_current_state(TASK_RUNNING);
		return -ERESTARTSYS;
	}
	sleep_dropping(lock, flags, timeout, before, arg);
	__set_current_state(TASK_RUNNING);
	return 0;
}

long vgpio_msecs_to_jiffies(unsigned int ms)
{
	return msecs_to_jiffies(ms);
}

unsigned long vgpio_jiffies(void)
{
	return jiffies;
}

#endif

bool vgpio_current_is_exiting(void)
{
	return current->flags & PF_EXITING;
}

#ifdef VGPIO_K612
void vgpio_might_sleep(void)
{
	might_sleep();
}

void vgpio_rcu_read_lock(void)
{
	rcu_read_lock();
}

void vgpio_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

void vgpio_wake_up_all(struct wait_queue_head *wq)
{
	wake_up_all(wq);
}

unsigned long vgpio_find_next_bit(const unsigned long *addr, unsigned long size,
				  unsigned long offset)
{
	return find_next_bit(addr, size, offset);
}

unsigned long vgpio_find_last_bit(const unsigned long *addr, unsigned long size)
{
	return find_last_bit(addr, size);
}

void vgpio_assign_bit(unsigned long nr, unsigned long *addr, bool value)
{
	__assign_bit(nr, addr, value);
}

#endif

int vgpio_gpiochip_add_data(struct gpio_chip *gc, void *data)
{
	return gpiochip_add_data(gc, data);
}

void vgpio_gpio_irq_chip_set_chip(struct gpio_chip *gc, const struct irq_chip *chip)
{
	gpio_irq_chip_set_chip(&gc->irq, chip);
	gc->irq.handler = handle_level_irq;
	gc->irq.default_type = IRQ_TYPE_NONE;
	gc->irq.parent_handler = NULL;
	gc->irq.num_parents = 0;
	gc->irq.parents = NULL;
}

struct gpio_chip *vgpio_irq_data_get_gpio_chip(struct irq_data *d)
{
	return irq_data_get_irq_chip_data(d);
}
