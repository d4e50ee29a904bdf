/* The council kind inside the engine: rounds driven by child jobs, every
 * step in the transaction that ends a child. On a manual clock (timeouts
 * without sleeping) and a fault store (every statement of a step may fail;
 * the whole step then rolls back and can be taken again). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/fixture.h"
#include "base/clock.h"
#include "engine/coord.h"
#include "engine/kind.h"
#include "engine/kinds/council.h"
#include "store/testing/fault.h"

typedef struct {
  char dir[64], url[180];
  pq_manual_clock clock;
  pq_coord *c;
  char worker[PQ_UUID_LEN + 1];
  char council[PQ_UUID_LEN + 1];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  pq_coord_config cfg = {.max_attempts = 3, .retry_backoff_ms = 100, .retry_backoff_max_ms = 100,
                         .lease_timeout_ms = 60000, .worker_timeout_ms = 3600000};
  static const char *const members[] = {"a", "b", "c"}, *const synth[] = {"s", "t"};
  pq_council_defaults d = {.members = members, .n_members = 3, .synthesizers = synth, .n_synthesizers = 2,
                           .member_timeout_ms = 5000, .max_tokens = 64, .context_tokens = 100};
  if (pq_council_configure(&d) != 0 || pq_test_open_engine(f->dir, f->url, "fault+sqlite", &f->clock, &cfg, &f->c))
    return -1;
  pq_worker w = {.name = "w", .models = "[\"a\",\"b\",\"c\",\"s\",\"t\",\"e\"]", .capabilities = "{}"};
  pq_op op = {.kind = PQ_OP_REGISTER, .in.reg.worker = &w};
  if (pq_coord_call(f->c, &op) != PQ_OK) return -1;
  memcpy(f->worker, w.id, sizeof f->worker);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = pq_test_close_engine(f->c, f->dir);
  free(f);
  return rc;
}

static void submit_council(fixture *f, const char *extra) {
  char text[512];
  snprintf(text, sizeof text, "{\"query\":\"capital of France?\"%s}", extra ? extra : "");
  json_t *input = json_loads(text, 0, NULL);
  pq_jerr why = {0};
  assert_int_equal(pq_job_kind_find("council")->validate(input, &why), PQ_OK);
  pq_job *job = pq_job_new();
  job->kind = strdup("council");
  job->model = strdup("council");
  job->owner = strdup("");
  job->input = json_dumps(input, JSON_COMPACT);
  json_decref(input);
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = job};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  assert_int_equal(op.out.job->state, PQ_JOB_LEASED); /* run here at once, never queued */
  memcpy(f->council, op.out.job->id, sizeof f->council);
  pq_op_release(&op);
}

static pq_job *council(fixture *f) {
  pq_job *job = NULL;
  assert_int_equal(pq_coord_get_job(f->c, f->council, 0, &job), PQ_OK);
  return job;
}

/* Every job the worker can lease now. */
static size_t lease_all(fixture *f, pq_job **out, size_t max) {
  int n = pq_test_lease(f->c, f->worker, out, max);
  assert_true(n >= 0);
  return (size_t)n;
}

static pq_err complete_raw(fixture *f, pq_job *job, const char *output) {
  pq_op op = {.kind = PQ_OP_COMPLETE,
              .in.complete = {.job_id = job->id, .token = job->lease_token, .output = output, .prompt_tokens = 3,
                              .completion_tokens = 2}};
  pq_err e = pq_coord_call(f->c, &op);
  pq_op_release(&op);
  return e;
}

static pq_err complete(fixture *f, pq_job *job, const char *text) {
  char output[256];
  snprintf(output, sizeof output, "\"%s\"", text);
  return complete_raw(f, job, output);
}

static pq_err fail_job(fixture *f, pq_job *job) {
  pq_op op = {.kind = PQ_OP_FAIL,
              .in.fail = {.job_id = job->id, .token = job->lease_token, .code = "UPSTREAM_REJECTED",
                          .message = "no", .retryable = false}};
  pq_err e = pq_coord_call(f->c, &op);
  pq_op_release(&op);
  return e;
}

static void reap_after(fixture *f, int64_t ms) {
  pq_manual_clock_advance(&f->clock, ms);
  pq_op op = {.kind = PQ_OP_REAP};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_op_release(&op);
}

static json_t *output_of(fixture *f) {
  pq_job *job = council(f);
  json_t *out = json_loads(job->output, 0, NULL);
  pq_job_free(job);
  assert_non_null(out);
  return out;
}

static void agreeing_members_then_a_synthesis(void **state) {
  fixture *f = *state;
  submit_council(f, NULL);
  pq_job *jobs[8];
  size_t n = lease_all(f, jobs, 8);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(jobs[i]->parent_id, f->council);
    assert_string_equal(jobs[i]->kind, "chat");
    assert_int_equal(complete(f, jobs[i], "Paris"), PQ_OK);
    pq_job_free(jobs[i]);
  }
  assert_int_equal(lease_all(f, jobs, 8), 1); /* the synthesis, for the first synthesizer */
  assert_string_equal(jobs[0]->model, "s");
  assert_int_equal(complete(f, jobs[0], "Paris it is"), PQ_OK);
  pq_job_free(jobs[0]);
  pq_job *done = council(f);
  assert_int_equal(done->state, PQ_JOB_COMPLETED);
  assert_int_equal(done->prompt_tokens, 4 * 3); /* every child's usage */
  assert_int_equal(done->completion_tokens, 4 * 2);
  pq_job_free(done);
  json_t *out = output_of(f);
  assert_string_equal(json_string_value(json_object_get(out, "decision")), "Paris it is");
  assert_string_equal(json_string_value(json_object_get(out, "confidence")), "high");
  assert_string_equal(json_string_value(json_object_get(out, "similarity")), "lexical");
  json_decref(out);
}

/* The step that ends round 1 (measure, decide, start the synthesis) fails at
 * each of its statements in turn: every time nothing of it stays, and the
 * same completion then succeeds. */
static void a_failing_statement_rolls_the_whole_step_back(void **state) {
  fixture *f = *state;
  submit_council(f, NULL);
  pq_job *jobs[8];
  assert_int_equal(lease_all(f, jobs, 8), 3);
  assert_int_equal(complete(f, jobs[0], "Paris"), PQ_OK);
  assert_int_equal(complete(f, jobs[1], "Paris"), PQ_OK);
  pq_store *s = pq_coord_store(f->c);
  int failures = 0;
  for (int nth = 1;; nth++) {
    int before = pq_store_fault_injected(s);
    pq_store_fault_arm(s, PQ_FAULT_STATEMENT, nth, PQ_FAULT_IO_ERROR, false);
    pq_err e = complete(f, jobs[2], "Paris");
    bool injected = pq_store_fault_injected(s) > before;
    pq_store_fault_disarm(s);
    if (!injected) {
      assert_int_equal(e, PQ_OK);
      break;
    }
    failures++;
    assert_int_equal(e, PQ_ERR_STORE_FAILED);
    pq_job *now = council(f);
    json_t *st = json_loads(now->output, 0, NULL);
    json_t *answers = json_object_get(json_array_get(json_object_get(st, "rounds"), 0), "answers");
    assert_string_equal(json_string_value(json_object_get(json_array_get(answers, 2), "status")), "pending");
    assert_null(json_object_get(st, "synthesis"));
    json_decref(st);
    pq_job_free(now);
    pq_job *none[2];
    assert_int_equal(lease_all(f, none, 2), 0); /* no synthesis was queued */
  }
  assert_true(failures >= 5); /* the child's row, its parent's, the event log, the synthesis job, ... */
  for (int i = 0; i < 3; i++) pq_job_free(jobs[i]);
  assert_int_equal(lease_all(f, jobs, 8), 1);
  assert_string_equal(jobs[0]->model, "s");
  pq_job_free(jobs[0]);
}

static void members_that_time_out_end_the_council_without_a_quorum(void **state) {
  fixture *f = *state;
  submit_council(f, NULL);
  pq_job *jobs[8];
  assert_int_equal(lease_all(f, jobs, 8), 3);
  assert_int_equal(complete(f, jobs[0], "Paris"), PQ_OK);
  for (int i = 0; i < 3; i++) pq_job_free(jobs[i]);
  /* b and c never answer: their leases lapse (member timeout), the retries
   * wait out their ttl, and they expire */
  reap_after(f, 5001);
  reap_after(f, 5001);
  pq_job *done = council(f);
  assert_int_equal(done->state, PQ_JOB_FAILED);
  assert_string_equal(done->error_code, "MINIMUM_QUORUM_NOT_MET");
  pq_job_free(done);
}

static void a_council_past_its_deadline_times_out_and_stops_its_members(void **state) {
  fixture *f = *state;
  submit_council(f, ",\"memberTimeoutMs\":1000");
  pq_job *jobs[8];
  assert_int_equal(lease_all(f, jobs, 8), 3);
  /* the members' heartbeats would keep them leased; the council's own deadline still holds */
  pq_job *c = council(f);
  int64_t deadline = c->lease_expires_at;
  pq_job_free(c);
  pq_manual_clock_advance(&f->clock, deadline - pq_clock_wall(&f->clock.clock) + 1);
  pq_op hb = {.kind = PQ_OP_HEARTBEAT, .in.heartbeat.worker_id = f->worker};
  assert_int_equal(pq_coord_call(f->c, &hb), PQ_OK);
  pq_op_release(&hb);
  reap_after(f, 0);
  pq_job *done = council(f);
  assert_int_equal(done->state, PQ_JOB_FAILED);
  assert_string_equal(done->error_code, "TIMEOUT");
  pq_job_free(done);
  for (int i = 0; i < 3; i++) {
    pq_job *member = NULL;
    assert_int_equal(pq_coord_get_job(f->c, jobs[i]->id, 0, &member), PQ_OK);
    /* asked to stop while still leased, or ended: never requeued from a stale row */
    assert_true((member->state == PQ_JOB_LEASED && member->cancel_requested) || pq_job_state_terminal(member->state));
    pq_job_free(member);
    pq_job_free(jobs[i]);
  }
}

static void a_failing_synthesizer_hands_over_to_the_next(void **state) {
  fixture *f = *state;
  submit_council(f, NULL);
  pq_job *jobs[8];
  assert_int_equal(lease_all(f, jobs, 8), 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(complete(f, jobs[i], "Paris"), PQ_OK);
    pq_job_free(jobs[i]);
  }
  assert_int_equal(lease_all(f, jobs, 8), 1);
  assert_string_equal(jobs[0]->model, "s");
  assert_int_equal(fail_job(f, jobs[0]), PQ_OK);
  pq_job_free(jobs[0]);
  assert_int_equal(lease_all(f, jobs, 8), 1);
  assert_string_equal(jobs[0]->model, "t");
  assert_int_equal(complete(f, jobs[0], "Paris, says t"), PQ_OK);
  pq_job_free(jobs[0]);
  json_t *out = output_of(f);
  assert_string_equal(json_string_value(json_object_get(out, "synthesizer")), "t");
  assert_false(json_is_true(json_object_get(out, "degraded")));
  json_decref(out);
}

static void validation_fills_defaults_and_refuses_what_the_operator_did_not_allow(void **state) {
  (void)state;
  const pq_job_kind *k = pq_job_kind_find("council");
  json_t *in = json_loads("{\"query\":\"q\"}", 0, NULL);
  pq_jerr why = {0};
  assert_int_equal(k->validate(in, &why), PQ_OK);
  assert_int_equal(json_integer_value(json_object_get(in, "quorum")), 2); /* a majority of three */
  assert_int_equal(json_integer_value(json_object_get(in, "maxRounds")), 3);
  assert_int_equal(json_array_size(json_object_get(in, "members")), 3);
  assert_string_equal(json_string_value(json_object_get(in, "negotiationMode")), "parallel");
  json_decref(in);
  static const char *const bad[] = {
      "{}", "{\"query\":\"\"}", "{\"query\":\"q\",\"members\":[\"a\",\"z\"]}",
      "{\"query\":\"q\",\"members\":[\"a\",\"a\"]}", "{\"query\":\"q\",\"quorum\":4}",
      "{\"query\":\"q\",\"memberTimeoutMs\":999999}", "{\"query\":\"q\",\"maxRounds\":11}",
      "{\"query\":\"q\",\"fallbackStrategy\":\"coin\"}", "{\"query\":\"q\",\"context\":[]}", NULL};
  for (int i = 0; bad[i]; i++) {
    in = json_loads(bad[i], 0, NULL);
    assert_int_equal(k->validate(in, &why), PQ_ERR_INVALID_REQUEST);
    pq_jerr_clear(&why);
    json_decref(in);
  }
}

/* A reaper pass settles each job from its row as it is then, not as the scan
 * saw it: the member settled first moves the council on, and the council's
 * own timeout then sees (and stops) what that step started. */
static void a_reaper_pass_settles_each_job_from_its_latest_row(void **state) {
  fixture *f = *state;
  submit_council(f, ",\"memberTimeoutMs\":1000");
  pq_job *jobs[8];
  assert_int_equal(lease_all(f, jobs, 8), 3);
  assert_int_equal(complete(f, jobs[0], "Paris"), PQ_OK);
  assert_int_equal(complete(f, jobs[1], "Paris"), PQ_OK);
  pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = jobs[2]->id};
  assert_int_equal(pq_coord_call(f->c, &cancel), PQ_OK); /* leased: asked to stop, never answers */
  pq_op_release(&cancel);
  pq_job *c = council(f);
  pq_manual_clock_advance(&f->clock, c->lease_expires_at - pq_clock_wall(&f->clock.clock) + 1);
  pq_job_free(c);
  reap_after(f, 0); /* the member's lease and the council's deadline, in one pass */
  pq_job *done = council(f);
  assert_int_equal(done->state, PQ_JOB_FAILED);
  assert_string_equal(done->error_code, "TIMEOUT");
  json_t *st = json_loads(done->output, 0, NULL);
  const char *synthesis = json_string_value(json_object_get(json_object_get(st, "synthesis"), "job"));
  assert_non_null(synthesis); /* the member's end took its step, and the timeout kept it */
  pq_job *s = NULL;
  assert_int_equal(pq_coord_get_job(f->c, synthesis, 0, &s), PQ_OK);
  assert_int_equal(s->state, PQ_JOB_CANCELLED); /* and stopped it */
  pq_job_free(s);
  json_decref(st);
  pq_job_free(done);
  pq_job *none[2];
  assert_int_equal(lease_all(f, none, 2), 0);
  for (int i = 0; i < 3; i++) pq_job_free(jobs[i]);
}

static size_t council_events(fixture *f, const char *kind, char *joined, size_t size) {
  pq_job *c = council(f);
  pq_job_event *ev = NULL;
  size_t n = 0, count = 0;
  assert_int_equal(pq_coord_events(f->c, c->number, 1, 0, 1000, &ev, &n), PQ_OK);
  joined[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (strcmp(ev[i].kind, kind) != 0) continue;
    count++;
    json_t *d = json_loads(ev[i].data, 0, NULL);
    const char *text = json_string_value(json_object_get(d, kind[0] == 'c' ? "content" : "message"));
    strncat(joined, text ? text : "", size - strlen(joined) - 1);
    strncat(joined, kind[0] == 'c' ? "" : "|", size - strlen(joined) - 1);
    json_decref(d);
  }
  pq_job_events_free(ev, n);
  pq_job_free(c);
  return count;
}

/* The synthesis streamed something that is not how its answer begins (a
 * re-sent post, a model that rewrites): the stream starts over, whole, and a
 * multi-byte letter is never cut. */
static void a_stream_that_is_not_the_answers_beginning_starts_over(void **state) {
  fixture *f = *state;
  submit_council(f, NULL);
  pq_job *jobs[8];
  assert_int_equal(lease_all(f, jobs, 8), 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(complete(f, jobs[i], "Paris"), PQ_OK);
    pq_job_free(jobs[i]);
  }
  assert_int_equal(lease_all(f, jobs, 8), 1);
  const char *chunk[] = {"{\"content\":\" \"}"};
  pq_op append = {.kind = PQ_OP_APPEND,
                  .in.append = {.job_id = jobs[0]->id, .token = jobs[0]->lease_token, .data = chunk, .n = 1}};
  assert_int_equal(pq_coord_call(f->c, &append), PQ_OK);
  pq_op_release(&append);
  assert_int_equal(complete(f, jobs[0], "\u00e9tant"), PQ_OK);
  pq_job_free(jobs[0]);
  pq_job *done = council(f);
  assert_int_equal(done->state, PQ_JOB_COMPLETED);
  pq_job_free(done);
  char text[512];
  assert_int_equal(council_events(f, "chunk", text, sizeof text), 2);
  assert_string_equal(text, " \xc3\xa9tant"); /* the stray space, then the whole answer */
  council_events(f, "progress", text, sizeof text);
  assert_non_null(strstr(text, "The synthesis restarted"));
}

/* Embeddings that would overflow the cosine are not trusted: the round is
 * measured by its words instead, and says so. */
static void unusable_embeddings_fall_back_to_words(void **state) {
  fixture *f = *state;
  submit_council(f, ",\"embeddingModel\":\"e\",\"fallbackStrategy\":\"majority\",\"maxRounds\":1");
  pq_job *jobs[8];
  assert_int_equal(lease_all(f, jobs, 8), 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(complete(f, jobs[i], i == 2 ? "Lyon is it" : "Paris"), PQ_OK);
    pq_job_free(jobs[i]);
  }
  assert_int_equal(lease_all(f, jobs, 8), 1);
  assert_string_equal(jobs[0]->kind, "embedding");
  assert_int_equal(complete_raw(f, jobs[0],
                                "{\"data\":[{\"index\":0,\"embedding\":[1,0]},{\"index\":1,\"embedding\":[1,0]},"
                                "{\"index\":2,\"embedding\":[1e200,1e200]}]}"),
                   PQ_OK);
  pq_job_free(jobs[0]);
  json_t *out = output_of(f);
  json_t *round = json_array_get(json_object_get(out, "rounds"), 0);
  assert_string_equal(json_string_value(json_object_get(round, "similarity")), "lexical");
  assert_string_equal(json_string_value(json_object_get(out, "decision")), "Paris"); /* not the outlier */
  json_decref(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(agreeing_members_then_a_synthesis, setup, teardown),
      cmocka_unit_test_setup_teardown(a_failing_statement_rolls_the_whole_step_back, setup, teardown),
      cmocka_unit_test_setup_teardown(members_that_time_out_end_the_council_without_a_quorum, setup, teardown),
      cmocka_unit_test_setup_teardown(a_council_past_its_deadline_times_out_and_stops_its_members, setup, teardown),
      cmocka_unit_test_setup_teardown(a_failing_synthesizer_hands_over_to_the_next, setup, teardown),
      cmocka_unit_test_setup_teardown(a_reaper_pass_settles_each_job_from_its_latest_row, setup, teardown),
      cmocka_unit_test_setup_teardown(a_stream_that_is_not_the_answers_beginning_starts_over, setup, teardown),
      cmocka_unit_test_setup_teardown(unusable_embeddings_fall_back_to_words, setup, teardown),
      cmocka_unit_test_setup_teardown(validation_fills_defaults_and_refuses_what_the_operator_did_not_allow, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
