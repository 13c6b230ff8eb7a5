/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef JOBSHM_SPANK_SLURM_H
#define JOBSHM_SPANK_SLURM_H

#include <stdint.h>

#include <slurm/spank.h>

#include "jobshm.h"

/* What the plugin reads of Slurm beyond the SPANK API (spank/slurm.c). */

/*
 * 1 if Slurm runs a job container or namespace plugin (JobContainerType,
 * NamespaceType since 25.11): its tasks must start in the host's
 * namespace, where its holder is.
 */
int jobshm_slurm_container(void);

/*
 * A plugin option of this step in slurmstepd: as given to srun, else as
 * Slurm passed the job's on in the environment (into buf); NULL: unset.
 */
const char *jobshm_spank_option(spank_t sp, struct spank_option *o,
				char *buf, size_t len);

/*
 * In sbatch, salloc or srun, after Slurm parsed the options: -1 (with
 * the node's words in err) if the nodes would refuse --shm or
 * --nvram-options for certain; the configuration at conf_path ("": the
 * defaults) decides, through the one admission check.  0 when it is
 * possible or not known here (then the node decides).
 */
int jobshm_submit_check(const char *conf_path, const char *shm,
			const char *nvram, jobshm_err_t *err);

/*
 * In sbatch, salloc or srun (for a new allocation), after Slurm parsed
 * the options: the job's memory per node in bytes from an absolute
 * --mem (command line, #SBATCH line or SBATCH_MEM_PER_NODE,
 * SALLOC_MEM_PER_NODE, SLURM_MEM_PER_NODE); 0 when it is not known
 * there: no --mem, --mem=0, --mem-per-cpu, --mem-per-gpu, a step of a
 * running job, or a Slurm that does not export its options.
 */
uint64_t jobshm_submit_mem(void);

#endif
