/*
 * The libpq reference of the benchmark suite: P1 (upsert), P2 (transfer) and P5 (point) written
 * directly against libpq, each statement prepared once per connection and reused for every row.
 * Started by bench/workers/libpq.ts (which compiles this file); it speaks the worker protocol of
 * bench/workers/common.ts itself: warm-up runs, then timed runs, each timed run preceded by the
 * line `@turn` on stdout and the line `go` on stdin when interleaved, and one final JSON line
 * `{"times":[…],"warmupTimes":[…]}` on stdout. Errors go to stderr with a non-zero exit.
 *
 * Usage:
 *   pgline_libpq_bench <workload> <conninfo> <mode> <warmup> <runs> <units> <budgetMs> <interleave> <sql>...
 *
 *   workload   upsert | transfer | point
 *   mode       pipelined | sequential
 *   units      rows (upsert), transfers (transfer) or queries (point) per run
 *   budgetMs   sequential upsert: stop a run after this many ms and extrapolate (-1: no budget)
 *   interleave 1: wait for `go` before each timed run
 *   sql        upsert: the INSERT … ON CONFLICT text; transfer: the debit and credit UPDATEs;
 *              point: the SELECT (the orchestrator's texts, passed in so there is one source)
 *
 * Pipelined runs use libpq's pipeline mode on a non-blocking connection: statements are queued
 * with PQsendQueryPrepared, written with PQflush whenever a batch has been queued, and results
 * read as they arrive (PQconsumeInput) so that neither side stalls on a full socket buffer; one
 * PQpipelineSync ends the run's pipeline. Sequential runs use PQexecPrepared, one at a time.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static PGconn *conn;
static const char *workload;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "libpq %s failed: ", workload ? workload : "?");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Before each timed run when interleaved: announce the turn and wait for `go`. */
static void wait_turn(int interleave) {
  char line[64];
  if (!interleave) return;
  fputs("@turn\n", stdout);
  fflush(stdout);
  if (fgets(line, sizeof line, stdin) == NULL) die("stdin closed while waiting for `go`");
  line[strcspn(line, "\r\n")] = '\0';
  if (strcmp(line, "go") != 0) die("expected `go` on stdin, got \"%.60s\"", line);
}

static void prepare(const char *name, const char *sql, int nparams) {
  PGresult *r = PQprepare(conn, name, sql, nparams, NULL);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) die("prepare %s: %s", name, PQerrorMessage(conn));
  PQclear(r);
}

/* A command that must succeed (sequential runs). */
static PGresult *expect(PGresult *r, ExecStatusType status, const char *what) {
  if (r == NULL || PQresultStatus(r) != status) {
    die("%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
  }
  return r;
}

static void exec_simple(const char *sql) { PQclear(expect(PQexec(conn, sql), PGRES_COMMAND_OK, sql)); }

/* --- pipelined runs ------------------------------------------------------------------------- */

/*
 * One pipelined run's bookkeeping: items (queries and the sync) sent and not yet answered, the
 * rows the upserts reported, and the command tag of the last command (COMMIT expected).
 */
struct pipeline {
  long outstanding;
  long affected;
  char last_tag[32];
  int synced;
};

/*
 * Reads whatever has arrived without blocking and takes every complete result. A query's results
 * end with a NULL from PQgetResult; the sync's is one PGRES_PIPELINE_SYNC result (no NULL after).
 */
static void drain(struct pipeline *p) {
  if (!PQconsumeInput(conn)) die("reading: %s", PQerrorMessage(conn));
  while (p->outstanding > 0 && !PQisBusy(conn)) {
    PGresult *r = PQgetResult(conn);
    if (r == NULL) {
      p->outstanding--;
      continue;
    }
    switch (PQresultStatus(r)) {
      case PGRES_COMMAND_OK:
        p->affected += atol(PQcmdTuples(r));
        snprintf(p->last_tag, sizeof p->last_tag, "%s", PQcmdStatus(r));
        break;
      case PGRES_PIPELINE_SYNC:
        p->outstanding--;
        p->synced = 1;
        break;
      default:
        die("pipelined statement: %s %s", PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    }
    PQclear(r);
  }
}

/* Waits until the socket is readable (and, when `want_write`, writable), then reads. */
static void wait_socket(struct pipeline *p, int want_write) {
  struct pollfd fd = {.fd = PQsocket(conn), .events = POLLIN | (want_write ? POLLOUT : 0)};
  if (poll(&fd, 1, -1) < 0 && errno != EINTR) die("poll: %s", strerror(errno));
  if (fd.revents & (POLLIN | POLLERR | POLLHUP)) drain(p);
}

/* Writes what libpq has queued without blocking; reads what has arrived meanwhile. */
static void flush_some(struct pipeline *p) {
  int f = PQflush(conn);
  if (f < 0) die("writing: %s", PQerrorMessage(conn));
  drain(p);
}

/* After the sync: write everything, then read until the sync's result. */
static void finish(struct pipeline *p) {
  for (;;) {
    int f = PQflush(conn);
    if (f < 0) die("writing: %s", PQerrorMessage(conn));
    drain(p);
    if (f == 0 && p->outstanding == 0) break;
    wait_socket(p, f == 1);
  }
  if (!p->synced) die("pipeline ended without its sync");
}

static void send_prepared(struct pipeline *p, const char *name, int n, const char *const *values) {
  if (!PQsendQueryPrepared(conn, name, n, values, NULL, NULL, 0)) die("send %s: %s", name, PQerrorMessage(conn));
  p->outstanding++;
}

static void send_command(struct pipeline *p, const char *sql) {
  if (!PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0)) die("send %s: %s", sql, PQerrorMessage(conn));
  p->outstanding++;
}

static void sync_pipeline(struct pipeline *p) {
  if (!PQpipelineSync(conn)) die("sync: %s", PQerrorMessage(conn));
  p->outstanding++;
}

/* Statements queued between two writes (about 12 KiB of Bind/Execute for the upsert). */
#define FLUSH_EVERY 256

/* --- workloads ------------------------------------------------------------------------------ */

static long units;
static const char *mode;
static double budget_ms;
static long done_min;
static char **row_id, **row_name, **row_qty;

/* Upsert row i (1-based): id i, name i's decimal digits, qty i % 97 (as common.ts's upsertRow). */
static void make_rows(long n) {
  char buf[32];
  row_id = malloc(sizeof(char *) * n);
  row_name = malloc(sizeof(char *) * n);
  row_qty = malloc(sizeof(char *) * n);
  for (long k = 0; k < n; k++) {
    long i = k + 1;
    snprintf(buf, sizeof buf, "%ld", i);
    row_id[k] = strdup(buf);
    row_name[k] = strdup(buf);
    snprintf(buf, sizeof buf, "%ld", i % 97);
    row_qty[k] = strdup(buf);
  }
}

static double upsert_pipelined(void) {
  struct pipeline p = {0};
  double t0 = now_ms();
  send_command(&p, "BEGIN");
  for (long k = 0; k < units; k++) {
    const char *values[3] = {row_id[k], row_name[k], row_qty[k]};
    send_prepared(&p, "upsert", 3, values);
    if ((k + 1) % FLUSH_EVERY == 0) flush_some(&p);
  }
  send_command(&p, "COMMIT");
  sync_pipeline(&p);
  finish(&p);
  double t = now_ms() - t0;
  /* BEGIN and COMMIT report no rows: what was counted is the upserts'. */
  if (p.affected != units) die("upserted %ld of %ld rows", p.affected, units);
  if (strcmp(p.last_tag, "COMMIT") != 0) die("COMMIT answered %s", p.last_tag);
  return t;
}

static double upsert_sequential(void) {
  double t0 = now_ms();
  long done = 0;
  exec_simple("BEGIN");
  while (done < units && (budget_ms < 0 || now_ms() - t0 < budget_ms)) {
    const char *values[3] = {row_id[done], row_name[done], row_qty[done]};
    PGresult *r = expect(PQexecPrepared(conn, "upsert", 3, values, NULL, NULL, 0), PGRES_COMMAND_OK, "upsert");
    if (strcmp(PQcmdTuples(r), "1") != 0) die("upsert of row %ld affected %s rows", done + 1, PQcmdTuples(r));
    PQclear(r);
    done++;
  }
  exec_simple("COMMIT");
  if (done < done_min) done_min = done;
  return (now_ms() - t0) * (double)units / (double)done;
}

static const char *const debit_values[2] = {"1", "1"};  /* TRANSFER_AMOUNT from account 1 */
static const char *const credit_values[2] = {"1", "2"}; /* … to account 2 */

static double transfer_pipelined(void) {
  double t0 = now_ms();
  for (long i = 0; i < units; i++) {
    struct pipeline p = {0};
    send_command(&p, "BEGIN");
    send_prepared(&p, "debit", 2, debit_values);
    send_prepared(&p, "credit", 2, credit_values);
    send_command(&p, "COMMIT");
    sync_pipeline(&p);
    finish(&p);
    if (p.affected != 2) die("transfer updated %ld rows, not 2", p.affected);
    if (strcmp(p.last_tag, "COMMIT") != 0) die("COMMIT answered %s", p.last_tag);
  }
  return now_ms() - t0;
}

static double transfer_sequential(void) {
  double t0 = now_ms();
  for (long i = 0; i < units; i++) {
    exec_simple("BEGIN");
    PGresult *r = expect(PQexecPrepared(conn, "debit", 2, debit_values, NULL, NULL, 0), PGRES_COMMAND_OK, "debit");
    if (strcmp(PQcmdTuples(r), "1") != 0) die("debit updated %s rows", PQcmdTuples(r));
    PQclear(r);
    r = expect(PQexecPrepared(conn, "credit", 2, credit_values, NULL, NULL, 0), PGRES_COMMAND_OK, "credit");
    if (strcmp(PQcmdTuples(r), "1") != 0) die("credit updated %s rows", PQcmdTuples(r));
    PQclear(r);
    r = expect(PQexec(conn, "COMMIT"), PGRES_COMMAND_OK, "COMMIT");
    if (strcmp(PQcmdStatus(r), "COMMIT") != 0) die("COMMIT answered %s", PQcmdStatus(r));
    PQclear(r);
  }
  return now_ms() - t0;
}

static double point_sequential(void) {
  char value[32];
  double t0 = now_ms();
  for (long i = 0; i < units; i++) {
    snprintf(value, sizeof value, "%ld", i);
    const char *values[1] = {value};
    PGresult *r = expect(PQexecPrepared(conn, "point", 1, values, NULL, NULL, 0), PGRES_TUPLES_OK, "point");
    if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), value) != 0) die("point %ld answered a wrong row", i);
    PQclear(r);
  }
  return now_ms() - t0;
}

static void print_times(const char *key, const double *times, int n) {
  printf("\"%s\":[", key);
  for (int i = 0; i < n; i++) printf("%s%.6f", i ? "," : "", times[i]);
  putchar(']');
}

int main(int argc, char **argv) {
  if (argc < 10) {
    fprintf(stderr,
            "usage: %s <workload> <conninfo> <mode> <warmup> <runs> <units> <budgetMs> <interleave> <sql>...\n",
            argv[0]);
    return 2;
  }
  workload = argv[1];
  mode = argv[3];
  int warmup = atoi(argv[4]);
  int runs = atoi(argv[5]);
  units = atol(argv[6]);
  budget_ms = atof(argv[7]);
  int interleave = atoi(argv[8]);
  int pipelined = strcmp(mode, "pipelined") == 0;
  if (!pipelined && strcmp(mode, "sequential") != 0) die("unknown mode %s", mode);
  if (units <= 0 || runs < 0 || warmup < 0) die("bad sizes");
  done_min = units;

  conn = PQconnectdb(argv[2]);
  if (PQstatus(conn) != CONNECTION_OK) die("connect: %s", PQerrorMessage(conn));

  double (*once)(void) = NULL;
  if (strcmp(workload, "upsert") == 0) {
    prepare("upsert", argv[9], 3);
    make_rows(units);
    once = pipelined ? upsert_pipelined : upsert_sequential;
  } else if (strcmp(workload, "transfer") == 0) {
    if (argc < 11) die("transfer needs the debit and credit statements");
    prepare("debit", argv[9], 2);
    prepare("credit", argv[10], 2);
    once = pipelined ? transfer_pipelined : transfer_sequential;
  } else if (strcmp(workload, "point") == 0) {
    if (pipelined) die("point runs sequentially only");
    prepare("point", argv[9], 1);
    once = point_sequential;
  } else {
    die("unknown workload");
  }

  if (pipelined) {
    if (PQsetnonblocking(conn, 1) != 0) die("non-blocking: %s", PQerrorMessage(conn));
    if (!PQenterPipelineMode(conn)) die("pipeline mode: %s", PQerrorMessage(conn));
  }

  double *warmup_times = calloc(warmup + 1, sizeof(double));
  double *times = calloc(runs + 1, sizeof(double));
  for (int i = 0; i < warmup; i++) warmup_times[i] = once();
  for (int i = 0; i < runs; i++) {
    wait_turn(interleave);
    times[i] = once();
  }

  putchar('{');
  print_times("times", times, runs);
  putchar(',');
  print_times("warmupTimes", warmup_times, warmup);
  if (done_min < units) printf(",\"done\":%ld,\"extrapolated\":true", done_min);
  printf(",\"extra\":{\"libpq\":%d}}\n", PQlibVersion());
  fflush(stdout);
  PQfinish(conn);
  return 0;
}
