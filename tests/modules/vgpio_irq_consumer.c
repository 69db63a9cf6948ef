// SPDX-License-Identifier: GPL-2.0
/*
 * A kernel consumer of a virtio-gpio line's interrupt, for the tests: finds
 * line @line of the chip labelled @label, takes its interrupt with
 * request_threaded_irq(IRQF_ONESHOT) and the given trigger (with
 * @threaded=0: request_irq, a hard handler only), and counts.
 * The counts are read-only module parameters:
 *   hard     primary handler runs
 *   thread   thread handler runs (each sleeps @work_ms)
 *   overlap  primary handler runs while the thread was still running
 *            (0: a ONESHOT line stays masked until the thread ends)
 * Optionally @retype changes the trigger type once the interrupt is enabled,
 * and @stress_cycles runs that many disable_irq/enable_irq cycles at load.
 * Writing 1 to the parameter @disabled calls disable_irq(), 0 enable_irq().
 * Writing 0 or 1 to @drive makes the line an output at that value, -1 an
 * input again (the shared-line pattern: disable_irq, drive, input,
 * enable_irq); the write fails with gpiolib's error.
 * With @open_drain, the line is taken through a lookup table as an
 * open-drain output driven high (which gpiolib emulates on a chip without
 * open drain by making it an input) before its interrupt is requested, and
 * @drive 0/1 sets its value with gpiod_set_value_cansleep (low: the chip's
 * direction_output; high: its direction_input, both called without
 * gpiolib's interrupt check).
 */

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/gpio.h>
#include <linux/gpio/consumer.h>
#include <linux/gpio/driver.h>
#include <linux/gpio/machine.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/string.h>

static char *label;
module_param(label, charp, 0444);
static int line;
module_param(line, int, 0444);
static char *trigger = "rising";
module_param(trigger, charp, 0444);
static int work_ms = 5;
module_param(work_ms, int, 0444);
static char *retype;
module_param(retype, charp, 0444);
static int stress_cycles;
module_param(stress_cycles, int, 0444);
static bool open_drain;
module_param(open_drain, bool, 0444);
/* false: a hard handler only (its line is unmasked as soon as it returns) */
static bool threaded = true;
module_param(threaded, bool, 0444);

static unsigned int hard, thread, overlap;
module_param(hard, uint, 0444);
module_param(thread, uint, 0444);
module_param(overlap, uint, 0444);

static atomic_t in_thread = ATOMIC_INIT(0);
static int gpio = -1;
static int irq = -1;
/* the line as gpio_request_one() took it (neither @open_drain nor failed) */
static struct gpio_desc *req_desc;
/* open_drain: the line's descriptor, got for this device through the table */
static struct gpio_desc *od_desc;
static struct platform_device *od_pdev;
static struct gpiod_lookup_table od_table = {
	.dev_id = "vgpio-consumer",
	.table = { {}, {} },
};

static bool disabled;
static DEFINE_MUTEX(disabled_lock);

static int disabled_set(const char *val, const struct kernel_param *kp)
{
	bool d;
	int ret = kstrtobool(val, &d);

	if (ret)
		return ret;
	if (irq < 0)
		return -ENODEV;
	mutex_lock(&disabled_lock);
	if (d && !disabled)
		disable_irq(irq);
	else if (!d && disabled)
		enable_irq(irq);
	disabled = d;
	mutex_unlock(&disabled_lock);
	return 0;
}

static const struct kernel_param_ops disabled_ops = {
	.set = disabled_set,
	.get = param_get_bool,
};
module_param_cb(disabled, &disabled_ops, &disabled, 0644);

static int drive = -1;

static int drive_set(const char *val, const struct kernel_param *kp)
{
	int v, ret = kstrtoint(val, 0, &v);

	if (ret)
		return ret;
	if (v < -1 || v > 1)
		return -EINVAL;
	if (irq < 0)
		return -ENODEV;
	/*
	 * The descriptor API: gpiolib refuses an output on a line whose
	 * interrupt is enabled there (the legacy and raw calls do not check).
	 */
	if (od_desc)
		ret = v < 0 ? -EINVAL : gpiod_set_value_cansleep(od_desc, v);
	else if (v < 0)
		ret = gpiod_direction_input(gpio_to_desc(gpio));
	else
		ret = gpiod_direction_output(gpio_to_desc(gpio), v);
	if (!ret)
		drive = v;
	return ret;
}

static const struct kernel_param_ops drive_ops = {
	.set = drive_set,
	.get = param_get_int,
};
module_param_cb(drive, &drive_ops, &drive, 0644);

static irqreturn_t consumer_hard(int irq, void *data)
{
	WRITE_ONCE(hard, hard + 1);
	if (atomic_read(&in_thread))
		WRITE_ONCE(overlap, overlap + 1);
	return IRQ_WAKE_THREAD;
}

static irqreturn_t consumer_hard_only(int irq, void *data)
{
	WRITE_ONCE(hard, hard + 1);
	return IRQ_HANDLED;
}

static irqreturn_t consumer_thread(int irq, void *data)
{
	atomic_set(&in_thread, 1);
	WRITE_ONCE(thread, thread + 1);
	msleep(work_ms);
	atomic_set(&in_thread, 0);
	return IRQ_HANDLED;
}

static unsigned long trigger_flags(const char *t)
{
	if (!strcmp(t, "rising"))
		return IRQF_TRIGGER_RISING;
	if (!strcmp(t, "falling"))
		return IRQF_TRIGGER_FALLING;
	if (!strcmp(t, "both"))
		return IRQF_TRIGGER_RISING | IRQF_TRIGGER_FALLING;
	if (!strcmp(t, "high"))
		return IRQF_TRIGGER_HIGH;
	if (!strcmp(t, "low"))
		return IRQF_TRIGGER_LOW;
	return 0;
}

static void release_line(void)
{
	if (od_desc) {
		gpiod_put(od_desc);
		od_desc = NULL;
	}
	if (od_pdev) {
		platform_device_unregister(od_pdev);
		od_pdev = NULL;
		gpiod_remove_lookup_table(&od_table);
	}
	if (req_desc) {
		/*
		 * By descriptor: once the chip is gone its number finds no
		 * descriptor, and gpio_free() would leave the request (and the
		 * chip driver's module reference) behind.
		 */
		gpiod_put(req_desc);
		req_desc = NULL;
	}
}

/* The line as an open-drain output driven high, through a lookup table. */
static int get_open_drain_line(void)
{
	od_table.table[0] = GPIO_LOOKUP(label, line, NULL, GPIO_OPEN_DRAIN);
	gpiod_add_lookup_table(&od_table);
	od_pdev = platform_device_register_simple("vgpio-consumer", PLATFORM_DEVID_NONE,
						  NULL, 0);
	if (IS_ERR(od_pdev)) {
		int ret = PTR_ERR(od_pdev);

		od_pdev = NULL;
		gpiod_remove_lookup_table(&od_table);
		return ret;
	}
	od_desc = gpiod_get(&od_pdev->dev, NULL, GPIOD_OUT_HIGH);
	if (IS_ERR(od_desc)) {
		int ret = PTR_ERR(od_desc);

		od_desc = NULL;
		return ret;
	}
	return 0;
}

static int __init consumer_init(void)
{
	unsigned long flags = trigger_flags(trigger);
	struct gpio_device *gdev;
	int ret;

	if (!label || !flags)
		return -EINVAL;
	gdev = gpio_device_find_by_label(label);
	if (!gdev)
		return -ENODEV;
	gpio = gpio_device_get_base(gdev) + line;
	gpio_device_put(gdev);

	if (open_drain) {
		ret = get_open_drain_line();
	} else {
		ret = gpio_request_one(gpio, GPIOF_IN, "vgpio-consumer");
		if (!ret)
			req_desc = gpio_to_desc(gpio);
	}
	if (ret) {
		release_line();
		return ret;
	}
	irq = gpio_to_irq(gpio);
	if (irq < 0) {
		release_line();
		return irq;
	}
	if (threaded)
		ret = request_threaded_irq(irq, consumer_hard, consumer_thread,
					   IRQF_ONESHOT | flags, "vgpio-consumer", NULL);
	else
		ret = request_irq(irq, consumer_hard_only, flags, "vgpio-consumer", NULL);
	if (ret) {
		release_line();
		return ret;
	}
	pr_info("vgpio_irq_consumer: %s line %d (gpio %d) irq %d %s\n",
		label, line, gpio, irq, trigger);

	/* Change the trigger while the interrupt is enabled. */
	if (retype && trigger_flags(retype))
		irq_set_irq_type(irq, trigger_flags(retype));

	/* Disable/enable cycles; the irq core masks and unmasks meanwhile. */
	if (stress_cycles > 0) {
		int i;

		for (i = 0; i < stress_cycles; i++) {
			disable_irq(irq);
			enable_irq(irq);
			if (!(i % 256))
				cond_resched();
		}
		pr_info("vgpio_irq_consumer: %d disable/enable cycles done\n", stress_cycles);
	}
	return 0;
}

static void __exit consumer_exit(void)
{
	if (disabled)
		enable_irq(irq);
	free_irq(irq, NULL);
	release_line();
}

module_init(consumer_init);
module_exit(consumer_exit);
MODULE_DESCRIPTION("Test consumer of virtio-gpio interrupts");
MODULE_LICENSE("GPL");
