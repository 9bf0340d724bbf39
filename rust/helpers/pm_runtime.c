// SPDX-License-Identifier: GPL-2.0

/*
 * What kernel::pm_runtime needs that is inline: the usage-count calls always,
 * and without CONFIG_PM the stubs that stand in for pm_runtime_allow() and
 * pm_runtime_forbid().
 */

#include <linux/pm_runtime.h>

__rust_helper int rust_helper_pm_runtime_resume_and_get(struct device *dev)
{
	return pm_runtime_resume_and_get(dev);
}

__rust_helper int rust_helper_pm_runtime_resume(struct device *dev)
{
	return pm_runtime_resume(dev);
}

__rust_helper void rust_helper_pm_runtime_put(struct device *dev)
{
	pm_runtime_put(dev);
}

__rust_helper void rust_helper_pm_runtime_get_noresume(struct device *dev)
{
	pm_runtime_get_noresume(dev);
}

__rust_helper void rust_helper_pm_runtime_put_noidle(struct device *dev)
{
	pm_runtime_put_noidle(dev);
}

#ifndef CONFIG_PM
__rust_helper void rust_helper_pm_runtime_allow(struct device *dev)
{
	pm_runtime_allow(dev);
}

__rust_helper void rust_helper_pm_runtime_forbid(struct device *dev)
{
	pm_runtime_forbid(dev);
}
#endif
