import fc from 'fast-check';

// A failing property test prints its seed and shrink path; FC_SEED=<seed> FC_PATH=<path>
// replays that counterexample (run the one file). Tests that fix their own seed keep it.
if (process.env.FC_SEED) {
  fc.configureGlobal({
    seed: Number(process.env.FC_SEED),
    ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
    endOnFailure: true,
  });
}
