// The `cram` program: a table of subcommands, each a function owned by its module.
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "ops/cuda/gpu.h"
#include "data/data.h"
#include "tok/tok.h"
#include "eval/eval.h"
#include "train/train.h"

static int cmd_info(int argc, char **argv);
static int cmd_help(int argc, char **argv);

// `cram tokenizer train data=...` trains the tokenizer of a data config (the data module reads
// its sources); every other form is the tokenizer module's own command line.
static int cmd_tokenizer(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "train") == 0)
        for (int k = 2; k < argc; k++)
            if (strncmp(argv[k], "data=", 5) == 0 || strncmp(argv[k], "data.", 5) == 0)
                return data_tokenizer_cli(argc - 1, argv + 1);
    return tok_cli_main(argc, argv);
}

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); // argv[0] is the subcommand's name
    const char *help;
} command;

static const command commands[] = {
    {"config", cfg_cli_main, "print the resolved configuration of a pretrain or eval run"},
    {"data", data_cli_main, "build or inspect a token store"},
    {"tokenizer", cmd_tokenizer, "train a tokenizer or encode text with one"},
    {"pretrain", train_cli_main, "pretrain a model (arch=, train=, data=, budget=)"},
    {"eval", glue_cli_main, "fine-tune and score a checkpoint on GLUE"},
    {"export", export_cli_main, "write a checkpoint as a Hugging Face folder"},
    {"info", cmd_info, "show the build, the config folders and the GPUs cram can see"},
    {"help", cmd_help, "show this list"},
};
static const int ncommands = (int)(sizeof commands / sizeof *commands);

static void usage(FILE *f) {
    fprintf(f,
            "cram %s: BERT-style masked language model pretraining (\"cramming\") in C\n\n"
            "usage: cram <command> [key=value overrides...]\n\ncommands:\n",
            CRAM_VERSION);
    for (int k = 0; k < ncommands; k++)
        fprintf(f, "  %-10s %s\n", commands[k].name, commands[k].help);
    fprintf(f, "\n`cram <command> --help` shows the options of one command.\n");
}

static int cmd_help(int argc, char **argv) {
    (void)argc, (void)argv;
    usage(stdout);
    return 0;
}

static int cmd_info(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: cram info\n");
        return 2;
    }
    printf("cram %s\n", CRAM_VERSION);
    printf("cpu threads: %d (OpenMP)\n", omp_get_max_threads());
    cfg_search s;
    cfg_search_init(&s);
    cfg_search_default(&s);
    for (int k = 0; k < s.ndirs; k++)
        printf("config folder: %s\n", s.dirs[k]);
    if (s.ndirs == 0) printf("config folder: none found (set CRAM_CONFIG_PATH)\n");
    cfg_search_free(&s);
    gpu_info gi;
    char err[512] = "";
    if (!gpu_compiled()) {
        printf("cuda: not compiled in\n");
    } else if (gpu_query(&gi, err, sizeof err)) {
        printf("cuda: error: %s\n", err);
    } else {
        printf("cuda: runtime %d, driver %d, %d device(s)\n", gi.runtime_version, gi.driver_version,
               gi.count);
        if (gi.count)
            printf("gpu 0: %s, compute capability %d.%d, %.1f GiB\n", gi.name, gi.cc_major,
                   gi.cc_minor, (double)gi.total_mem / (1 << 30));
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) return cmd_help(0, NULL);
    if (strcmp(name, "--version") == 0) {
        printf("cram %s\n", CRAM_VERSION);
        return 0;
    }
    for (int k = 0; k < ncommands; k++)
        if (strcmp(commands[k].name, name) == 0) return commands[k].run(argc - 1, argv + 1);
    fprintf(stderr, "cram: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
