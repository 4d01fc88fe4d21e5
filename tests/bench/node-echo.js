'use strict';
// node-echo: the idiomatic Node.js echo server, for `make bench` only (a peer of
// echo-server: what a user might write instead).
//
//   node node-echo.js [--listen HOST:PORT] [--port-file PATH]
//
// net.createServer({noDelay: true}, s => s.pipe(s)): the stream pipe gives backpressure
// (reading pauses while the socket's write buffer is above its high-water mark) and ends
// the socket after the peer's FIN. Added to the one-liner: an 'error' listener, without
// which a connection reset by its peer (ECONNRESET) would be an uncaught exception that
// ends the process. noDelay sets TCP_NODELAY on every accepted socket; the listen backlog
// is the bench's BENCH_BACKLOG (4096). The read size is not Node's to choose for accepted
// sockets: libuv reads up to 64 KiB at a time into Node's buffers. SIGTERM: exit 0.
const fs = require('fs');
const net = require('net');

const BACKLOG = 4096;

function parseArgs(argv) {
  const opts = { listen: '127.0.0.1:7100', portFile: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--listen' && i + 1 < argv.length) opts.listen = argv[++i];
    else if (argv[i] === '--port-file' && i + 1 < argv.length) opts.portFile = argv[++i];
    else {
      process.stderr.write('usage: node-echo.js [--listen HOST:PORT] [--port-file PATH]\n');
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const colon = opts.listen.lastIndexOf(':');
const server = net.createServer({ noDelay: true }, (s) => {
  s.on('error', () => s.destroy());
  s.pipe(s);
});
server.on('error', (e) => {
  process.stderr.write(`node-echo: ${e.message}\n`);
  process.exit(2);
});
server.listen({ host: opts.listen.slice(0, colon), port: Number(opts.listen.slice(colon + 1)),
  backlog: BACKLOG }, () => {
  if (opts.portFile) {
    // Through a rename, so the bench never reads a partial file.
    fs.writeFileSync(opts.portFile + '.tmp', `${server.address().port}\n`);
    fs.renameSync(opts.portFile + '.tmp', opts.portFile);
  }
  process.stdout.write(`node-echo: node ${process.version}, libuv ${process.versions.uv}\n`);
});
process.on('SIGTERM', () => process.exit(0));
