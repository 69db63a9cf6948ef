// SPDX-License-Identifier: GPL-2.0
/*
 * Runner self-test: loading this module puts a WARNING splat in the guest's
 * kernel log. The guest runner must then fail the run and quote the splat,
 * even though every test passed.
 */

#include <linux/bug.h>
#include <linux/module.h>

static int __init vgpio_warn_test_init(void)
{
	WARN(1, "vgpio_warn_test: deliberate warning for the runner self-test\n");
	return 0;
}

static void __exit vgpio_warn_test_exit(void)
{
}

module_init(vgpio_warn_test_init);
module_exit(vgpio_warn_test_exit);
MODULE_DESCRIPTION("Makes a WARN splat so the log check can be shown to fail");
MODULE_LICENSE("GPL");
