// SPDX-License-Identifier: GPL-2.0-only
/*
 * kconfig-batch: resolves many .config requests against one parse of the
 * Kconfig tree, with the kernel's own kconfig code (the objects in scripts/kconfig).
 *
 * `make olddefconfig` spends its time in the Kconfig preprocessor (some two
 * hundred compiler probes), not in resolving symbols, so one olddefconfig per
 * combination would take hours for the matrix run.sh checks.  This program
 * parses once and then, for every request, reads it the way conf_read() does
 * (base config plus the requested lines, every symbol invalidated) and
 * computes the symbols asked for, which computes whatever they depend on,
 * plus the watched ones (below), so that Kconfig's warnings about them show.
 * `write` gives the .config that conf --olddefconfig would write; run.sh
 * compares a sample of them with the real `make olddefconfig`.
 *
 * Usage, in the build directory, with the environment Kconfig was last
 * configured with (include/config/auto.conf.cmd lists it):
 *   kconfig-batch Kconfig [--watch=KCONFIG_FILE]... SYMBOL... <requests
 * Watched: every symbol with a property in one of the KCONFIG_FILEs (as
 * Kconfig names them: drivers/vfio/Kconfig), and every symbol these select
 * or imply.  Requests, one a line:
 *   base FILE               the config every case starts from
 *   case ID [SYM=VAL]...    resolves base + "CONFIG_SYM=VAL" lines (VAL n
 *                           gives "# CONFIG_SYM is not set"); prints
 *                           "case ID" then "result ID SYMBOL=value..." for
 *                           the SYMBOLs named on the command line
 *   write FILE              writes the last case's whole .config to FILE
 * Everything kconfig prints about a case (warnings) comes between its
 * "case" and "result" lines: stderr is sent to stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lkc.h"
#include "internal.h"

static char **symbols;
static struct symbol **watch;
static int nwatch;
static char *base;
static size_t base_len;

static char *slurp(const char *name, size_t *len)
{
	FILE *f = fopen(name, "r");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f) {
		perror(name);
		exit(2);
	}
	do {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 1 << 20;
			buf = realloc(buf, cap);
			if (!buf)
				exit(2);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got);
	fclose(f);
	*len = n;
	return buf;
}

static bool in_files(struct symbol *sym, char **files, int nfiles)
{
	struct property *prop;
	int i;

	for (prop = sym->prop; prop; prop = prop->next)
		for (i = 0; i < nfiles; i++)
			if (prop->filename && !strcmp(prop->filename, files[i]))
				return true;
	return false;
}

/* The symbols of the watched files, and all that they select or imply. */
static void find_watched(char **files, int nfiles)
{
	struct symbol *sym, *ours[1024];
	int nours = 0, i;

	for_all_symbols(sym)
		if (sym->name && nours < 1024 && in_files(sym, files, nfiles))
			ours[nours++] = sym;
	for_all_symbols(sym) {
		bool w = false;

		for (i = 0; i < nours && !w; i++)
			w = sym == ours[i] ||
			    expr_contains_symbol(sym->rev_dep.expr, ours[i]) ||
			    expr_contains_symbol(sym->implied.expr, ours[i]);
		if (w) {
			watch = realloc(watch, (nwatch + 1) * sizeof(*watch));
			if (!watch)
				exit(2);
			watch[nwatch++] = sym;
		}
	}
	printf("watching %d symbols\n", nwatch);
}

static void run_case(char *args, const char *tmp)
{
	char *id = strtok(args, " \t"), *tok;
	FILE *f = fopen(tmp, "w");
	int i;

	if (!id || !f) {
		fprintf(stderr, "kconfig-batch: bad case line or %s\n", tmp);
		exit(2);
	}
	printf("case %s\n", id);
	if (base_len && fwrite(base, 1, base_len, f) != base_len)
		exit(2);
	while ((tok = strtok(NULL, " \t"))) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			fprintf(stderr, "kconfig-batch: bad token %s\n", tok);
			exit(2);
		}
		*eq = '\0';
		if (!strcmp(eq + 1, "n"))
			fprintf(f, "# CONFIG_%s is not set\n", tok);
		else
			fprintf(f, "CONFIG_%s=%s\n", tok, eq + 1);
	}
	if (fclose(f))
		exit(2);

	/* conf_read() less its loop computing every symbol of the tree */
	if (conf_read_simple(tmp, S_DEF_USER)) {
		fprintf(stderr, "kconfig-batch: cannot read %s\n", tmp);
		exit(2);
	}
	sym_calc_value(modules_sym);
	for (i = 0; i < nwatch; i++)
		sym_calc_value(watch[i]);
	printf("result %s", id);
	for (i = 0; symbols[i]; i++) {
		struct symbol *sym = sym_find(symbols[i]);

		if (!sym) {
			printf(" %s=undefined", symbols[i]);
			continue;
		}
		sym_calc_value(sym);
		printf(" %s=%s", symbols[i], sym_get_string_value(sym));
	}
	printf("\n");
}

int main(int ac, char **av)
{
	char *line = NULL, tmp[64];
	size_t cap = 0;
	ssize_t len;
	int nfiles;

	if (ac < 2) {
		fprintf(stderr, "usage: %s Kconfig [--watch=FILE]... SYMBOL... <requests\n",
			av[0]);
		return 2;
	}
	/* One ordered stream: kconfig's warnings land inside their case. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	dup2(1, 2);
	setvbuf(stderr, NULL, _IONBF, 0);
	conf_set_message_callback(NULL);
	snprintf(tmp, sizeof(tmp), ".kconfig-batch.%d", (int)getpid());

	conf_parse(av[1]);
	printf("parsed\n");
	for (nfiles = 0; 2 + nfiles < ac &&
	     !strncmp(av[2 + nfiles], "--watch=", 8); nfiles++)
		av[2 + nfiles] += 8;
	find_watched(av + 2, nfiles);
	symbols = av + 2 + nfiles;

	while ((len = getline(&line, &cap, stdin)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (!strncmp(line, "base ", 5)) {
			free(base);
			base = slurp(line + 5, &base_len);
		} else if (!strncmp(line, "case ", 5)) {
			run_case(line + 5, tmp);
		} else if (!strncmp(line, "write ", 6)) {
			if (conf_write(line + 6))
				return 2;
			printf("written %s\n", line + 6);
		} else if (len) {
			fprintf(stderr, "kconfig-batch: bad request: %s\n", line);
			return 2;
		}
	}
	unlink(tmp);
	return 0;
}
