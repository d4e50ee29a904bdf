/* The relay (engine/relay.c): a leased job's chunks answered from memory once
 * its job is known, read back from memory, written by the writer's next
 * transaction (also after a failed one), and forgotten when the job changes.
 * A manual clock and a fault store: nothing here sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>

#include "support/fixture.h"
#include "engine/coord.h"
#include "engine/internal.h" /* the writer's side of the relay */
#include "store/testing/fault.h"

typedef struct {
  char dir[64], url[180];
  pq_manual_clock clock;
  pq_coord *c;
  char worker[PQ_UUID_LEN + 1];
  pq_job *job; /* leased */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  pq_coord_config cfg = {.lease_timeout_ms = 60000, .worker_timeout_ms = 3600000};
  if (pq_test_open_engine(f->dir, f->url, "fault+sqlite", &f->clock, &cfg, &f->c) != 0) return -1;
  if (pq_test_register_worker(f->c, f->worker) != 0) return -1;
  pq_job *j = pq_job_new();
  j->model = strdup("m");
  j->input = strdup("{\"prompt\":\"x\"}");
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = j};
  if (pq_coord_call(f->c, &op) != PQ_OK) return -1;
  pq_op_release(&op);
  if (pq_test_lease(f->c, f->worker, &f->job, 1) != 1) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  pq_job_free(f->job);
  int rc = pq_test_close_engine(f->c, f->dir);
  free(f);
  return rc;
}

/* A post through the writer (what the HTTP door does when the relay says no). */
static pq_err post_through_writer(fixture *f, const char *token, const char *text, int64_t *seq, bool *cancel) {
  const char *data[] = {text};
  pq_op op = {.kind = PQ_OP_APPEND, .in.append = {.job_id = f->job->id, .token = token, .data = data, .n = 1}};
  pq_err e = pq_coord_call(f->c, &op);
  if (seq) *seq = op.out.last_seq;
  if (cancel) *cancel = op.out.cancel_requested;
  pq_op_release(&op);
  return e;
}

static pq_err post_to_relay(fixture *f, const char *token, const char *text, int64_t *seq, bool *cancel) {
  const char *data[] = {text};
  int64_t s = 0;
  bool c = false;
  pq_err e = pq_coord_relay_append(f->c, f->job->id, token, data, 1, &s, &c);
  if (seq) *seq = s;
  if (cancel) *cancel = c;
  return e;
}

/* What the store holds of the attempt: the entries' texts joined. */
static void stored(fixture *f, char *out, size_t size) {
  pq_job_event *ev = NULL;
  size_t n = 0;
  assert_int_equal(pq_coord_events(f->c, f->job->number, f->job->attempts, 0, 100, &ev, &n), PQ_OK);
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(ev[i].seq, (int64_t)i + 1); /* numbered without a gap */
    strncat(out, ev[i].data, size - strlen(out) - 1);
  }
  pq_job_events_free(ev, n);
}

/* Any transaction of the writer: a reaper pass, as the clock's beat makes; its result. */
static pq_err writer_pass(fixture *f) {
  pq_op op = {.kind = PQ_OP_REAP};
  pq_err e = pq_coord_call(f->c, &op);
  pq_op_release(&op);
  return e;
}

static void writer_runs(fixture *f) { assert_int_equal(writer_pass(f), PQ_OK); }

static void a_job_is_relayed_after_its_first_post(void **state) {
  fixture *f = *state;
  const char *token = f->job->lease_token;
  assert_int_equal(post_to_relay(f, token, "\"a\"", NULL, NULL), PQ_ERR_NOT_FOUND); /* unknown yet */
  int64_t seq = 0;
  assert_int_equal(post_through_writer(f, token, "\"a\"", &seq, NULL), PQ_OK);
  assert_int_equal(seq, 1);
  bool cancel = true;
  assert_int_equal(post_to_relay(f, token, "\"b\"", &seq, &cancel), PQ_OK);
  assert_int_equal(seq, 2);
  assert_false(cancel);
  assert_int_equal(post_to_relay(f, token, "\"c\"", &seq, NULL), PQ_OK);
  assert_int_equal(seq, 3);
  /* readers get the new ones from memory; older than memory holds, or another attempt: the store */
  pq_job_event *ev = NULL;
  size_t n = 0;
  assert_int_equal(pq_coord_relay_read(f->c, f->job->id, f->job->attempts, 1, 10, &ev, &n), PQ_OK);
  assert_int_equal(n, 2);
  assert_string_equal(ev[0].data, "\"b\"");
  assert_int_equal(ev[1].seq, 3);
  pq_job_events_free(ev, n);
  assert_int_equal(pq_coord_relay_read(f->c, f->job->id, f->job->attempts, 3, 10, &ev, &n), PQ_OK);
  assert_int_equal(n, 0);
  assert_int_equal(pq_coord_relay_read(f->c, f->job->id, f->job->attempts, 0, 10, &ev, &n), PQ_ERR_NOT_FOUND);
  assert_int_equal(pq_coord_relay_read(f->c, f->job->id, f->job->attempts + 1, 0, 10, &ev, &n), PQ_ERR_NOT_FOUND);
  /* the store has them once the writer runs, whatever it runs */
  char text[256];
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"");
  writer_runs(f);
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"\"b\"\"c\"");
  /* another lease's token: the relay does not decide, and the writer refuses it */
  assert_int_equal(post_to_relay(f, "not-the-lease", "\"x\"", NULL, NULL), PQ_ERR_NOT_FOUND);
  assert_int_equal(post_through_writer(f, "not-the-lease", "\"x\"", NULL, NULL), PQ_ERR_LEASE_MISMATCH);
}

static void a_change_to_the_job_sends_posts_back_to_the_writer(void **state) {
  fixture *f = *state;
  const char *token = f->job->lease_token;
  assert_int_equal(post_through_writer(f, token, "\"a\"", NULL, NULL), PQ_OK);
  assert_int_equal(post_to_relay(f, token, "\"b\"", NULL, NULL), PQ_OK);
  pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = f->job->id};
  assert_int_equal(pq_coord_call(f->c, &cancel), PQ_OK);
  pq_op_release(&cancel);
  /* the cancel dropped the job from memory: the worker hears of it through the writer */
  assert_int_equal(post_to_relay(f, token, "\"c\"", NULL, NULL), PQ_ERR_NOT_FOUND);
  int64_t seq = 0;
  bool asked = false;
  assert_int_equal(post_through_writer(f, token, "\"c\"", &seq, &asked), PQ_OK);
  assert_int_equal(seq, 3); /* after the relayed one, which the cancel's transaction wrote first */
  assert_true(asked);
  assert_int_equal(post_to_relay(f, token, "\"d\"", &seq, &asked), PQ_OK); /* known again, with the flag */
  assert_int_equal(seq, 4);
  assert_true(asked);
  /* the result comes after the chunks it followed */
  pq_op done = {.kind = PQ_OP_COMPLETE,
                .in.complete = {.job_id = f->job->id, .token = token, .output = "\"abcd\""}};
  assert_int_equal(pq_coord_call(f->c, &done), PQ_OK);
  pq_op_release(&done);
  char text[256];
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"\"b\"\"c\"\"d\"");
  pq_job_event *ev = NULL;
  size_t n = 0;
  assert_int_equal(pq_coord_relay_read(f->c, f->job->id, f->job->attempts, 4, 10, &ev, &n), PQ_ERR_NOT_FOUND);
  assert_int_equal(post_to_relay(f, token, "\"e\"", NULL, NULL), PQ_ERR_NOT_FOUND);
}

static void pending_pieces_survive_a_failed_transaction(void **state) {
  fixture *f = *state;
  const char *token = f->job->lease_token;
  assert_int_equal(post_through_writer(f, token, "\"a\"", NULL, NULL), PQ_OK);
  assert_int_equal(post_to_relay(f, token, "\"b\"", NULL, NULL), PQ_OK);
  /* the transaction that would write it fails: it stays pending, and while writes fail the
   * relay acknowledges nothing more (the writer answers those posts) */
  pq_store *s = pq_coord_store(f->c);
  pq_store_fault_arm(s, PQ_FAULT_STATEMENT, 1, PQ_FAULT_IO_ERROR, false);
  assert_int_not_equal(writer_pass(f), PQ_OK);
  char text[256];
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"");
  assert_int_equal(post_to_relay(f, token, "\"x\"", NULL, NULL), PQ_ERR_NOT_FOUND);
  writer_runs(f);
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"\"b\"");
  /* a job dropped with pieces pending keeps them until written (called here as the writer
   * would after a commit, with the writer idle) */
  assert_int_equal(post_to_relay(f, token, "\"c\"", NULL, NULL), PQ_OK);
  pq__relay_drop(f->c->relay, f->job->id);
  assert_int_equal(post_to_relay(f, token, "\"d\"", NULL, NULL), PQ_ERR_NOT_FOUND);
  writer_runs(f);
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"\"b\"\"c\"");
  int64_t seq = 0;
  assert_int_equal(post_through_writer(f, token, "\"d\"", &seq, NULL), PQ_OK);
  assert_int_equal(seq, 4);
}

static void pieces_that_keep_failing_are_given_up(void **state) {
  fixture *f = *state;
  const char *token = f->job->lease_token;
  assert_int_equal(post_through_writer(f, token, "\"a\"", NULL, NULL), PQ_OK);
  assert_int_equal(post_to_relay(f, token, "\"b\"", NULL, NULL), PQ_OK);
  pq_store *s = pq_coord_store(f->c);
  pq_store_fault_arm(s, PQ_FAULT_STATEMENT, 1, PQ_FAULT_IO_ERROR, true);
  for (int i = 0; i < 3; i++) { /* the writer's transactions keep failing on it */
    assert_int_not_equal(writer_pass(f), PQ_OK);
  }
  pq_store_fault_disarm(s);
  writer_runs(f); /* commits again: "b" was given up */
  char text[256];
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"");
  int64_t seq = 0;
  assert_int_equal(post_through_writer(f, token, "\"c\"", &seq, NULL), PQ_OK);
  assert_int_equal(seq, 2); /* numbered after what the store has */
}

/* A post acknowledged while a transaction that changes the job is under way
 * (after that transaction wrote what was pending): it is written with the
 * change, and posts after the change are numbered after it. */
static void a_post_during_a_change_is_written_with_it(void **state) {
  fixture *f = *state;
  const char *token = f->job->lease_token;
  assert_int_equal(post_through_writer(f, token, "\"a\"", NULL, NULL), PQ_OK);
  assert_int_equal(post_to_relay(f, token, "\"b\"", NULL, NULL), PQ_OK);
  writer_runs(f); /* nothing pending now */
  pq_store *s = pq_coord_store(f->c);
  pq_store_fault_hold_at(s, 2); /* the cancel's transaction: its begin passes, its read of the job waits */
  pq_test_done d;
  pq_test_done_init(&d);
  pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = f->job->id, .done = pq_test_op_done, .ud = &d};
  pq_coord_submit(f->c, &cancel);
  pq_store_fault_wait_held(s);
  int64_t seq = 0;
  bool asked = true;
  pq_err posted = post_to_relay(f, token, "\"c\"", &seq, &asked);
  pq_store_fault_release(s); /* before asserting: a failed assertion must not leave the writer held */
  pq_test_wait_done(&d);
  assert_int_equal(posted, PQ_OK);
  assert_int_equal(seq, 3);
  assert_false(asked); /* not committed yet */
  assert_int_equal(cancel.out.result, PQ_OK);
  pq_op_release(&cancel);
  char text[256];
  stored(f, text, sizeof text); /* in the store with the cancel, not a transaction later */
  assert_string_equal(text, "\"a\"\"b\"\"c\"");
  assert_int_equal(post_to_relay(f, token, "\"d\"", NULL, NULL), PQ_ERR_NOT_FOUND);
  assert_int_equal(post_through_writer(f, token, "\"d\"", &seq, &asked), PQ_OK);
  assert_int_equal(seq, 4); /* after it: no seq twice */
  assert_true(asked);
  writer_runs(f);
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"\"b\"\"c\"\"d\"");
  pq_test_done_destroy(&d);
}

/* From the fence on (inside the transaction that ends the job) readers go to the store: the end
 * may be committed before the writer clears memory, and memory must not answer "nothing new". */
static void a_job_being_changed_is_read_from_the_store(void **state) {
  fixture *f = *state;
  const char *token = f->job->lease_token;
  assert_int_equal(post_through_writer(f, token, "\"a\"", NULL, NULL), PQ_OK);
  assert_int_equal(post_to_relay(f, token, "\"b\"", NULL, NULL), PQ_OK);
  writer_runs(f);
  pq_job_event *ev = NULL;
  size_t n = 0;
  assert_int_equal(pq_coord_relay_read(f->c, f->job->id, f->job->attempts, 2, 10, &ev, &n), PQ_OK);
  pq_store *s = pq_coord_store(f->c);
  pq_store_fault_hold_at(s, 4); /* the result's transaction: begin, read, update, then its commit waits */
  pq_test_done d;
  pq_test_done_init(&d);
  pq_op done = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = f->job->id, .token = token, .output = "\"ab\""},
                .done = pq_test_op_done, .ud = &d};
  pq_coord_submit(f->c, &done);
  pq_store_fault_wait_held(s);
  pq_err read = pq_coord_relay_read(f->c, f->job->id, f->job->attempts, 2, 10, &ev, &n);
  pq_err posted = post_to_relay(f, token, "\"c\"", NULL, NULL);
  pq_store_fault_release(s); /* before asserting: a failed assertion must not leave the writer held */
  pq_test_wait_done(&d);
  pq_job_events_free(ev, n);
  assert_int_equal(read, PQ_ERR_NOT_FOUND);
  assert_int_equal(posted, PQ_ERR_NOT_FOUND);
  assert_int_equal(done.out.result, PQ_OK);
  pq_op_release(&done);
  pq_test_done_destroy(&d);
}

static void a_closing_coordinator_writes_what_it_acknowledged(void **state) {
  fixture *f = *state;
  const char *token = f->job->lease_token;
  assert_int_equal(post_through_writer(f, token, "\"a\"", NULL, NULL), PQ_OK);
  assert_int_equal(post_to_relay(f, token, "\"b\"", NULL, NULL), PQ_OK);
  pq_coord_close(f->c); /* the writer's last transaction writes it */
  pq_coord_config cfg = {.store_url = f->url, .clock = &f->clock.clock, .lease_timeout_ms = 60000,
                         .worker_timeout_ms = 3600000};
  assert_int_equal(pq_coord_open(&cfg, &f->c), PQ_OK);
  char text[256];
  stored(f, text, sizeof text);
  assert_string_equal(text, "\"a\"\"b\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_job_is_relayed_after_its_first_post, setup, teardown),
      cmocka_unit_test_setup_teardown(a_change_to_the_job_sends_posts_back_to_the_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(pending_pieces_survive_a_failed_transaction, setup, teardown),
      cmocka_unit_test_setup_teardown(a_post_during_a_change_is_written_with_it, setup, teardown),
      cmocka_unit_test_setup_teardown(pieces_that_keep_failing_are_given_up, setup, teardown),
      cmocka_unit_test_setup_teardown(a_job_being_changed_is_read_from_the_store, setup, teardown),
      cmocka_unit_test_setup_teardown(a_closing_coordinator_writes_what_it_acknowledged, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
