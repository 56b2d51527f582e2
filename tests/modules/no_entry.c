/* A shared object that is not a pgtrackd module: no entry point. */
__attribute__((visibility("default"))) int not_a_module(void);

int not_a_module(void)
{
	return 42;
}
