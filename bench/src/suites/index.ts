/** Every suite, in run order. Add `publish`, `stream`, `outbox`, `broker`, `saga` here. */
import type { Suite } from '../lib/types.ts';
import { dispatch } from './dispatch.ts';
import { outbox } from './outbox.ts';
import { publish } from './publish.ts';
import { stream } from './stream.ts';

export const suites: readonly Suite[] = [dispatch, publish, stream, outbox];
