import { coreBehaviours } from './suites/core-behaviours.ts';
import { createPgliteDatabase } from './helpers/test-db.ts';

coreBehaviours('PGlite', createPgliteDatabase);
