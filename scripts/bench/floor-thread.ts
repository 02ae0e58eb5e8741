// The floor proxy's writer thread: commits each batch it is sent, then says which one is in.
import { parentPort, workerData } from 'node:worker_threads';
import { floorWriter, type Row } from './floor-writes.ts';

const write = floorWriter(workerData.dir as string);
parentPort!.on('message', ({ batch, rows }: { batch: number; rows: Row[] }) => {
  write(rows);
  parentPort!.postMessage(batch);
});
