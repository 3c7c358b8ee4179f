#!/usr/bin/env node
// fsil virtual board: the hil/pico firmware inside the official MicroPython WebAssembly build,
// attached to a serial device, so the plant talks to it through pyserial as to a real board.
//
//   node hil/virtual/board.mjs /dev/pts/7        a serial device (tty) by path
//   node hil/virtual/board.mjs --fd 3            an inherited tty file descriptor (pty master)
//   node hil/virtual/board.mjs --run script.py   run a script in the board's environment
//
// Options: --heap-kb N (MicroPython heap, default 512), --stats (one line of cycle
// statistics on stderr at exit), --quiet (no start-up line), --fsw SPEC (default, legacy or
// module:Class), --fsw-file PATH (a user's flight software module, copied to /board/ as on
// a Pico by 'fsil hil deploy --fsw'; repeatable).
//
// The firmware files are written into MicroPython's own filesystem as on a Pico:
//   /board/wire.py, /board/board.py        from hil/pico/
//   /board/fsw/*.py                        from fsw/
//   /board/bridge/__init__.py (empty), /board/bridge/protocol.py
// Bytes from the device go to board.Board.feed() (as hex text across the JS/Python
// boundary) and its reply goes back to the device. There is no fallback: if MicroPython
// cannot start, one line says so and the exit code is 1.
//
// Compute time: the WebAssembly port's time.ticks_us counts whole milliseconds, so the
// board is given a microsecond clock from JS (performance.now), read from MicroPython
// around the flight software's step, as time.ticks_us is on a Pico.

import fs from "node:fs";
import path from "node:path";
import tty from "node:tty";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");          // the folder holding fsw/, bridge/, hil/
const PACKAGE = "@micropython/micropython-webassembly-pyscript";
const NAME = "fsil virtual board";

function fail(message, code = 1) {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { device: null, fd: null, run: null, heapKb: 512, stats: false, quiet: false,
                 fsw: "default", fswFiles: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`, 2);
      return argv[++i];
    };
    if (a === "--fd") opts.fd = Number.parseInt(value(), 10);
    else if (a === "--run") opts.run = value();
    else if (a === "--heap-kb") opts.heapKb = Number.parseInt(value(), 10);
    else if (a === "--stats") opts.stats = true;
    else if (a === "--quiet") opts.quiet = true;
    else if (a === "--fsw") opts.fsw = value();
    else if (a === "--fsw-file") opts.fswFiles.push(value());
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: board.mjs (DEVICE | --fd N | --run SCRIPT.py) " +
                           "[--heap-kb N] [--stats] [--quiet] [--fsw default|legacy|module:Class] " +
                           "[--fsw-file PATH.py]...\n");
      process.exit(0);
    } else if (a.startsWith("-")) fail(`unknown option ${a}`, 2);
    else if (opts.device === null) opts.device = a;
    else fail(`unexpected argument ${a}`, 2);
  }
  if ([opts.device, opts.fd, opts.run].filter((x) => x !== null).length !== 1) {
    fail("give one of DEVICE, --fd N or --run SCRIPT.py (see --help)", 2);
  }
  if (opts.fd !== null && !(opts.fd >= 0)) fail("--fd needs a file descriptor number", 2);
  if (!(opts.heapKb >= 64)) fail("--heap-kb needs a number >= 64", 2);
  if (!["default", "legacy"].includes(opts.fsw) &&
      !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$/.test(opts.fsw)) {
    fail(`--fsw takes default, legacy or module:Class, got ${JSON.stringify(opts.fsw)}`, 2);
  }
  for (const f of opts.fswFiles) {
    if (!f.endsWith(".py")) fail(`--fsw-file takes a Python file (.py), got ${f}`, 2);
  }
  return opts;
}

// The files a Pico holds, as [path on the board, text].
function firmwareFiles(extra = []) {
  const files = [];
  const add = (boardPath, hostPath) => files.push([boardPath, fs.readFileSync(hostPath, "utf8")]);
  for (const name of ["wire.py", "board.py"]) add(`/board/${name}`, path.join(ROOT, "hil", "pico", name));
  const fswDir = path.join(ROOT, "fsw");
  for (const name of fs.readdirSync(fswDir).sort()) {
    if (name.endsWith(".py")) add(`/board/fsw/${name}`, path.join(fswDir, name));
  }
  files.push(["/board/bridge/__init__.py", ""]);   // the host's one imports msgpack and zmq
  add("/board/bridge/protocol.py", path.join(ROOT, "bridge", "protocol.py"));
  for (const f of extra) add(`/board/${path.basename(f)}`, f);   // the user's flight software
  return files;
}

async function startMicroPython(heapKb, stdout, extraFiles = []) {
  let loadMicroPython;
  try {
    ({ loadMicroPython } = await import(PACKAGE));
  } catch (error) {
    fail(`cannot start MicroPython: package ${PACKAGE} not found (${error.code || error.message}); ` +
         "install it with: npm ci --prefix hil/virtual");
  }
  let mp;
  try {
    mp = await loadMicroPython({
      heapsize: heapKb * 1024,
      stdout,
      stderr: (line) => process.stderr.write(`${line}\n`),
    });
  } catch (error) {
    fail(`cannot start MicroPython: ${error.message || error}`);
  }
  let files;
  try {
    files = firmwareFiles(extraFiles);
  } catch (error) {
    fail(`cannot read the firmware files: ${error.message}`);
  }
  for (const [boardPath, text] of files) {
    const dir = path.posix.dirname(boardPath);
    let sofar = "";
    for (const part of dir.split("/").filter(Boolean)) {
      sofar += `/${part}`;
      if (!mp.FS.analyzePath(sofar).exists) mp.FS.mkdir(sofar);
    }
    mp.FS.writeFile(boardPath, text);
  }
  // A microsecond clock for the board (the port's ticks_us counts whole milliseconds).
  const t0 = performance.now();
  mp.registerJsModule("jsclock", {
    ticks_us: () => Math.floor((performance.now() - t0) * 1000) % 0x40000000,
  });
  mp.runPython("import sys\nsys.path.insert(0, '/board')\n");
  return mp;
}

const SETUP = `
import binascii, jsclock
import board as _board_mod

def _diff(a, b):
    d = (a - b) & 0x3FFFFFFF
    return d - 0x40000000 if d & 0x20000000 else d

_board = _board_mod.Board(clock=(jsclock.ticks_us, _diff), fsw=FSW_SPEC)

def feed_hex(h):
    out = _board.feed(binascii.unhexlify(h))
    return binascii.hexlify(out).decode() if out else ""

def board_stats():
    s = _board.stats
    return "%d %d %d %d" % (s["frames"], s["compute_us_total"], s["compute_us_max"], _board.runs)

def runtime():
    return _board_mod.runtime_name()
`;

function writeAll(fd, buf) {
  let off = 0;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (error) {
      if (error.code !== "EAGAIN") throw error;
      Atomics.wait(pause, 0, 0, 1);   // the device's buffer is full: wait 1 ms
    }
  }
}

async function runScript(opts) {
  const mp = await startMicroPython(opts.heapKb, (line) => process.stdout.write(`${line}\n`),
                                   opts.fswFiles);
  const file = opts.run === "-" ? 0 : opts.run;
  const code = fs.readFileSync(file, "utf8");
  try {
    mp.runPython(code);
  } catch (error) {
    if (error.name !== "PythonError") throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

async function runBoard(opts) {
  const mp = await startMicroPython(opts.heapKb, (line) => process.stderr.write(`${line}\n`),
                                   opts.fswFiles);
  let feedHex, boardStats, runtime;
  try {
    mp.runPython(`FSW_SPEC = ${JSON.stringify(opts.fsw)}\n` + SETUP);
    feedHex = mp.globals.get("feed_hex");
    boardStats = mp.globals.get("board_stats");
    runtime = mp.globals.get("runtime")();
  } catch (error) {
    fail(`the firmware did not start under MicroPython: ${String(error.message || error).trim()}`);
  }

  let fd = opts.fd;
  const where = opts.device ?? `fd ${opts.fd}`;
  if (fd === null) {
    try {
      fd = fs.openSync(opts.device, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    } catch (error) {
      fail(`cannot open serial device ${opts.device}: ${error.message}`);
    }
  }
  if (!tty.isatty(fd)) fail(`${where} is not a serial device (tty)`);
  const input = new tty.ReadStream(fd);
  input.setRawMode(true);

  let feedUsTotal = 0;
  let feeds = 0;
  // an error (code != 0) is always said; an orderly close only without --quiet
  const finish = (code, message) => {
    if (message && (code !== 0 || !opts.quiet)) process.stderr.write(`${NAME}: ${message}\n`);
    if (opts.stats) {
      const [frames, computeTotal, computeMax, runs] = boardStats().split(" ").map(Number);
      const mean = frames ? computeTotal / frames : 0;
      process.stderr.write(
        `${NAME}: ${runs} run(s), ${frames} frames, fsw step mean ${mean.toFixed(0)} us ` +
        `max ${computeMax} us, feed (deframe + decode + step + encode + frame) mean ` +
        `${(feeds ? feedUsTotal / feeds : 0).toFixed(0)} us over ${feeds} reads\n`);
    }
    process.exit(code);
  };

  input.on("data", (chunk) => {
    let reply;
    const t = performance.now();
    try {
      reply = feedHex(chunk.toString("hex"));
    } catch (error) {
      finish(1, `firmware error: ${String(error.message || error).trim()}`);
      return;
    }
    feedUsTotal += (performance.now() - t) * 1000;
    feeds += 1;
    if (reply) {
      try {
        writeAll(fd, Buffer.from(reply, "hex"));
      } catch (error) {
        finish(0, `serial device ${where} closed (${error.code || error.message})`);
      }
    }
  });
  input.on("error", (error) => finish(0, `serial device ${where} closed (${error.code || error.message})`));
  input.on("end", () => finish(0, `serial device ${where} closed`));
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => finish(0, `stopped by ${signal}`));
  if (!opts.quiet) process.stderr.write(`${NAME}: ${runtime} on ${where}, waiting for HELLO\n`);
}

const opts = parseArgs(process.argv.slice(2));
if (opts.run !== null) await runScript(opts);
else await runBoard(opts);
