/* sym_secret.c - stands for a file only root may read (test_sym_files):
 * its symbol name must never come out of a symbolizer for another user's
 * target. */
int sym_secret_root_only_fn(int x);
__attribute__((visibility("default"))) int sym_secret_root_only_fn(int x)
{
	return x * 5 + 2;
}
