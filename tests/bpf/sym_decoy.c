/* sym_decoy.c - the library sym_swap_target maps (test_sym_files). */
int sym_decoy_fn(int x);
__attribute__((visibility("default"))) int sym_decoy_fn(int x)
{
	return x * 3 + 1;
}
