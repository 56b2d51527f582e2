/*
 * replay: runs files through LLVMFuzzerTestOneInput without libFuzzer, so
 * that the fuzz target is built and its seed corpus checked in every build
 * (gcc included).  Arguments are files or directories (their regular
 * files, not recursive).  Exit 0 if every input ran, 1 if one could not
 * be read or none was found; a broken invariant aborts.
 *
 *   fuzz_notify_lines_replay tests/fuzz/corpus [crash-file ...]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *p = realloc(buf, cap ? cap * 2 : 4096);

			if (!p) {
				perror("realloc");
				exit(2);
			}
			buf = p;
			cap = cap ? cap * 2 : 4096;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		perror(path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	printf("ok %s (%zu bytes)\n", path, len);
	return 0;
}

int main(int argc, char **argv)
{
	int inputs = 0, errors = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *dir;
		struct dirent *e;

		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			errors += run_file(argv[i]) < 0;
			inputs++;
			continue;
		}
		dir = opendir(argv[i]);
		if (!dir) {
			perror(argv[i]);
			errors++;
			continue;
		}
		while ((e = readdir(dir)) != NULL) {
			char path[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			errors += run_file(path) < 0;
			inputs++;
		}
		closedir(dir);
	}
	printf("%d inputs, %d errors\n", inputs, errors);
	return errors || inputs == 0 ? 1 : 0;
}
