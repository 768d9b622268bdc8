/*
 * Runs a fuzz target over files without libFuzzer, so that any C compiler
 * can replay the committed corpus (t/90-fuzz-corpus.t does, in make
 * test): each argument is a file or a directory of files, each file one
 * input.  A failed property aborts, as under libFuzzer.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!fp || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0
        || fseek(fp, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    /* An exact-size copy: a read past the input's end is a real one. */
    buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    fclose(fp);
    fprintf(stderr, "replay: %s\n", path);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int i, bad = 0, count = 0;

    for (i = 1; i < argc; i++) {
        struct stat st;
        struct dirent *de;
        DIR *dir;

        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no %s\n", argv[i]);
            bad++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad += replay_file(argv[i]);
            count++;
            continue;
        }
        if (!(dir = opendir(argv[i]))) {
            bad++;
            continue;
        }
        while ((de = readdir(dir))) {
            char path[4096];

            if (de->d_name[0] == '.') {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            bad += replay_file(path);
            count++;
        }
        closedir(dir);
    }
    printf("replayed %d inputs\n", count);
    return bad ? 1 : 0;
}
