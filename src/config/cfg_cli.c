// `cram config pretrain|eval [overrides...]`: print the fully resolved configuration, and the
// shared helper every subcommand uses to turn its command line into a configuration.
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

cfg_node *cfg_from_args(const char *primary, int argc, char **argv, cfg_error *err) {
    cfg_search s;
    cfg_search_init(&s);
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    for (int k = 0; k < argc; k++) {
        const char *dir = NULL;
        if (strncmp(argv[k], "--config-dir=", 13) == 0)
            dir = argv[k] + 13;
        else if (strcmp(argv[k], "--config-dir") == 0 && k + 1 < argc)
            dir = argv[++k];
        if (dir) {
            if (cfg_search_add(&s, dir)) {
                snprintf(err->msg, sizeof err->msg, "--config-dir %s: no such folder", dir);
                err->code = 2;
                cfg_search_free(&s);
                free(rest);
                return NULL;
            }
            continue;
        }
        rest[nrest++] = argv[k];
    }
    cfg_search_default(&s);
    cfg_node *root = cfg_compose(&s, primary, nrest, rest, err);
    cfg_search_free(&s);
    free(rest);
    return root;
}

static void usage(FILE *f) {
    fputs("usage: cram config pretrain|eval [--config-dir=DIR] [overrides...]\n"
          "\n"
          "Prints the fully resolved configuration as YAML: what a run with the same\n"
          "arguments would use and save in its run folder.\n"
          "\n"
          "overrides:  group=option      choose a config file (arch=crammed-bert, eval/tasks=rte)\n"
          "            a.b.c=value       change a key (train.optim.lr=1e-4, budget=48)\n"
          "            +a.b=value        add a key that the configs do not have\n"
          "            ++a.b=value       set a key whether or not it exists\n"
          "            ~a.b              remove a key\n"
          "            key=null          set a key to null\n",
          f);
}

int cfg_cli_cfg_flag(const char *primary, const char *prog, int argc, char **argv) {
    const char *kind = NULL;
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0, rc = -1;
    for (int k = 0; k < argc; k++) {
        if (strncmp(argv[k], "--cfg=", 6) == 0)
            kind = argv[k] + 6;
        else if ((strcmp(argv[k], "--cfg") == 0 || strcmp(argv[k], "-c") == 0) && k + 1 < argc)
            kind = argv[++k];
        else if (strcmp(argv[k], "--cfg") == 0 || strcmp(argv[k], "-c") == 0)
            kind = "";
        else if (strcmp(argv[k], "--resolve") != 0)
            rest[nrest++] = argv[k];
    }
    if (!kind) goto done;
    if (strcmp(kind, "hydra") == 0) {
        printf("# %s has no hydra section: its run folders, logging and launchers are fixed "
               "(--cfg job prints the job's configuration)\n",
               prog);
        rc = 0;
        goto done;
    }
    if (strcmp(kind, "job") != 0 && strcmp(kind, "all") != 0) {
        fprintf(stderr, "%s: --cfg takes job, all or hydra, not '%s'\n", prog, kind);
        rc = 2;
        goto done;
    }
    cfg_error err = {0};
    cfg_node *root = cfg_from_args(primary, nrest, rest, &err);
    if (!root) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        rc = err.code ? err.code : 2;
        goto done;
    }
    rc = cfg_write_yaml(root, stdout) ? 1 : 0;
    cfg_free(root);
done:
    free(rest);
    return rc;
}

int cfg_cli_main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *primary = argv[1];
    if (strcmp(primary, "pretrain") != 0 && strcmp(primary, "eval") != 0) {
        fprintf(stderr, "cram config: unknown job '%s' (pretrain or eval)\n", primary);
        return 2;
    }
    cfg_error err = {0};
    cfg_node *root = cfg_from_args(primary, argc - 2, argv + 2, &err);
    if (!root) {
        fprintf(stderr, "cram config: %s\n", err.msg);
        return err.code ? err.code : 1;
    }
    int rc = cfg_write_yaml(root, stdout) ? 1 : 0;
    cfg_free(root);
    return rc;
}
