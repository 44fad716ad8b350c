#!/usr/bin/env node
// A Node client of the NExT tracer: runs the tests of a small buggy program (RunTests), then
// traces the first failing test (Trace) and prints the verdicts and the trace.
//
//   node tracer_client.js [HOST:PORT]
//
// The target is the first argument, else $TRACER_TARGET, else localhost:50051. The protos are
// read from the repository's protos/ directory ($TRACER_PROTOS overrides it); nothing is
// generated ahead of time. Exit status: 0 when both calls succeeded (whatever the verdict),
// 1 when a call failed.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTOS = process.env.TRACER_PROTOS || path.resolve(__dirname, "..", "..", "..", "protos");
const TARGET = process.argv[2] || process.env.TRACER_TARGET || "localhost:50051";
const DEADLINE_S = 60;

// The bug: the loop skips the first element, and the sum is still divided by all of them.
const PROGRAM = [
  "def average(xs):",
  "    total = 0",
  "    for x in xs[1:]:",
  "        total += x",
  "    return total / len(xs)",
  "",
].join("\n");
// The first test passes by luck (the skipped element is 0); the second exposes the bug.
const TESTS = ["assert average([0, 4]) == 2", "assert average([2, 4, 6]) == 4"];

function loadTracerService() {
  const definition = protoLoader.loadSync("nextapi/tracer/v1/tracer_service.proto", {
    includeDirs: [PROTOS],
    keepCase: true, // field names as in the .proto (entry_points, not entryPoints)
    enums: String, // VERDICT_FAILED rather than 2
    longs: String,
    defaults: true, // unset fields read as their zero value, as in every other gRPC language
  });
  return grpc.loadPackageDefinition(definition).nextapi.tracer.v1.TracerService;
}

function call(client, method, request) {
  const deadline = new Date(Date.now() + DEADLINE_S * 1000);
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

async function main() {
  const TracerService = loadTracerService();
  const client = new TracerService(TARGET, grpc.credentials.createInsecure());
  try {
    const run = await call(client, "RunTests", {
      program: PROGRAM,
      tests: TESTS.map((source) => ({ source })),
      limits: { timeout_s: 5, memory_mb: 256 },
    });
    console.log("RunTests verdict: %s", run.verdict);
    run.tests.forEach((t, i) => {
      const message = t.message ? "  " + t.message.split("\n")[0] : "";
      console.log("  test %d: %s%s", i, t.verdict, message);
    });

    const failing = run.tests.findIndex((t) => t.verdict !== "VERDICT_PASSED");
    if (failing < 0) {
      console.log("every test passed: nothing to trace");
      return 0;
    }
    const trace = await call(client, "Trace", {
      program: PROGRAM,
      test: { source: TESTS[failing] },
      format: "next-inline",
    });
    console.log("");
    console.log("Trace of test %d (%s, %s):", failing, trace.format, trace.verdict);
    process.stdout.write(trace.rendered.endsWith("\n") ? trace.rendered : trace.rendered + "\n");
    return 0;
  } catch (err) {
    const code = err.code !== undefined ? grpc.status[err.code] : "";
    console.error("tracer call to %s failed: %s %s", TARGET, code, err.details || err.message);
    return 1;
  } finally {
    client.close();
  }
}

main().then((code) => {
  process.exitCode = code;
});
