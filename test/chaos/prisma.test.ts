import { chaosSuite } from '../fixtures/chaos-suite';

// test/fixtures/chaos-suite.ts: killed connections under load, on this driver.
chaosSuite('prisma over node-postgres (real server)');
