/** Every suite, in run order.  */
import type { Suite } from '../lib/types.ts';
import { broker } from './broker.ts';
import { console } from './console.ts';
import { dispatch } from './dispatch.ts';
import { http } from './http.ts';
import { observe } from './observe.ts';
import { outbox } from './outbox.ts';
import { publish } from './publish.ts';
import { read } from './read.ts';
import { saga } from './saga.ts';
import { service } from './service.ts';
import { stream } from './stream.ts';
import { write } from './write.ts';

export const suites: readonly Suite[] = [
  dispatch,
  publish,
  stream,
  outbox,
  broker,
  saga,
  write,
  read,
  http,
  observe,
  console,
  service,
];
