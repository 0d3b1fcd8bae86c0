// Says once, at the top of the run, whether the real-Postgres suites run or are skipped.
export default function setup() {
  if (process.env.DATABASE_URL) {
    process.stdout.write('Real-Postgres suites run against DATABASE_URL.\n');
  } else {
    process.stdout.write(
      'NOTICE: DATABASE_URL is not set; the real-Postgres suites are SKIPPED ' +
        '(PGlite and pg-mem suites still run). Set DATABASE_URL to run them.\n',
    );
  }
}
