import { coreBehaviours } from './suites/core-behaviours.ts';
import { createPostgresDatabase } from './helpers/test-db.ts';

coreBehaviours('PostgreSQL', createPostgresDatabase);
