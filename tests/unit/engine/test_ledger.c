/* Money inside the engine: holds at submit, charges and voids at the end, in
 * the job's own transaction. A property test runs random lives of jobs
 * across users and checks the ledger's invariants after every step; a burst
 * of submits against a balance that covers exactly ten worst cases gets
 * exactly ten jobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "support/fixture.h"
#include "base/clock.h"
#include "engine/coord.h"
#include "engine/kind.h"
#include "engine/kinds/council.h"

#define USERS 3

typedef struct {
  char dir[64], url[180];
  pq_manual_clock clock;
  pq_coord *c;
  char worker[PQ_UUID_LEN + 1];
  char users[USERS][PQ_UUID_LEN + 1];
} fixture;

static void call(fixture *f, pq_op *op, pq_err expect) {
  assert_int_equal(pq_coord_call(f->c, op), expect);
  pq_op_release(op);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  /* the fixture's worker has no owner (it earns nothing); a test registers an owned one to see shares */
  pq_coord_config cfg = {.max_attempts = 2, .retry_backoff_ms = 10, .retry_backoff_max_ms = 10,
                         .lease_timeout_ms = 1000, .worker_timeout_ms = 3600000, .worker_share_percent = 50};
  if (pq_test_open_engine(f->dir, f->url, "sqlite", &f->clock, &cfg, &f->c) ||
      pq_test_register_worker(f->c, f->worker) != 0)
    return -1;
  for (int i = 0; i < USERS; i++) {
    char name[16];
    snprintf(name, sizeof name, "u%d", i);
    if (pq_test_add_user(f->c, name, f->users[i])) return -1;
  }
  /* 1 USD per million tokens in, 2 out; the operator pays half */
  pq_price p = {.model = "m", .input_per_mtok = 1000000, .output_per_mtok = 2000000, .cost_input_per_mtok = 500000,
                .cost_output_per_mtok = 1000000};
  pq_op op = {.kind = PQ_OP_PRICE_SET, .in.price_set.price = &p};
  if (pq_coord_call(f->c, &op) != PQ_OK) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = pq_test_close_engine(f->c, f->dir);
  free(f);
  return rc;
}

static void grant(fixture *f, int user, int64_t micros, const char *id) {
  pq_op op = {.kind = PQ_OP_CREDIT_GRANT, .in.credit_grant = {.user_id = f->users[user], .id = id, .amount = micros}};
  call(f, &op, PQ_OK);
}

static pq_job *new_job(fixture *f, int user, int max_tokens) {
  pq_job *job = pq_job_new();
  char input[128];
  snprintf(input, sizeof input, "{\"params\":{\"max_tokens\":%d},\"prompt\":\"hello\"}", max_tokens);
  job->model = strdup("m");
  job->input = strdup(input);
  job->owner = strdup(f->users[user]);
  return job;
}

static pq_err submit(fixture *f, int user, int max_tokens, char id[PQ_UUID_LEN + 1], int64_t *needed) {
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = new_job(f, user, max_tokens)};
  pq_err e = pq_coord_call(f->c, &op);
  if (e == PQ_OK) memcpy(id, op.out.job->id, PQ_UUID_LEN + 1);
  if (needed) *needed = op.out.money.needed;
  pq_op_release(&op);
  return e;
}

static pq_account account(fixture *f, const char *id) {
  pq_account a;
  assert_int_equal(pq_coord_account(f->c, id, &a), PQ_OK);
  return a;
}

static pq_account user_account(fixture *f, int user) {
  char id[64];
  snprintf(id, sizeof id, "user:%s", f->users[user]);
  return account(f, id);
}

static pq_job *lease(fixture *f) {
  pq_op op = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = f->worker, .max_jobs = 1}};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_job *job = op.out.n_jobs ? op.out.jobs[0] : NULL;
  if (job) op.out.jobs[0] = NULL, op.out.n_jobs = 0;
  pq_op_release(&op);
  return job;
}

static pq_err complete(fixture *f, pq_job *job, int64_t prompt, int64_t completion) {
  pq_op op = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = job->id, .token = job->lease_token, .output = "\"ok\"",
                                                      .prompt_tokens = prompt, .completion_tokens = completion}};
  pq_err e = pq_coord_call(f->c, &op);
  pq_op_release(&op);
  return e;
}

static void invariants(fixture *f) {
  int64_t balance = -1, held = -1, pending = -1;
  assert_int_equal(pq_coord_ledger_totals(f->c, &balance, &held, &pending), PQ_OK);
  assert_int_equal(balance, 0); /* double entry: every transfer balances */
  assert_int_equal(held, pending); /* what accounts hold is exactly what open holds reserve */
  for (int u = 0; u < USERS; u++) {
    pq_account a = user_account(f, u);
    assert_true(a.held >= 0);
    assert_true(a.balance - a.held >= 0); /* usage within its worst case: never below zero */
  }
}

static void a_job_holds_its_worst_case_and_pays_its_real_cost(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1];
  int64_t needed = 0;
  assert_int_equal(submit(f, 0, 100, id, &needed), PQ_ERR_INSUFFICIENT_CREDITS); /* no credit yet */
  assert_true(needed > 200);
  pq_job_filter all = {.state = -1, .limit = 10};
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total = 0;
  assert_int_equal(pq_coord_list_jobs(f->c, &all, &jobs, &n, &total), PQ_OK);
  assert_int_equal(total, 0); /* and no job */
  pq_job_free_array(jobs, n);
  grant(f, 0, 1000000, "first");
  pq_op again = {.kind = PQ_OP_CREDIT_GRANT, .in.credit_grant = {.user_id = f->users[0], .id = "first", .amount = 1000000}};
  call(f, &again, PQ_ERR_ALREADY_EXISTS); /* the same grant again: once */
  assert_int_equal(user_account(f, 0).balance, 1000000);
  assert_int_equal(submit(f, 0, 100, id, NULL), PQ_OK);
  pq_account a = user_account(f, 0);
  assert_int_equal(a.held, needed); /* the worst case: the prompt's estimate and 100 tokens out */
  pq_job *job = lease(f);
  assert_int_equal(job->held_micros, needed);
  assert_int_equal(complete(f, job, 10, 20), PQ_OK);
  pq_job_free(job);
  pq_job *done = NULL;
  assert_int_equal(pq_coord_get_job(f->c, id, 0, &done), PQ_OK);
  assert_int_equal(done->cost_micros, 10 * 1 + 20 * 2); /* micros: tokens at 1 and 2 USD per million */
  pq_job_free(done);
  a = user_account(f, 0);
  assert_int_equal(a.balance, 1000000 - 50);
  assert_int_equal(a.held, 0);
  assert_int_equal(account(f, "revenue").balance, 50);
  assert_int_equal(account(f, "upstream").balance, 5 + 20); /* the operator's cost, rounded up per part */
  invariants(f);
}

/* A worker that reports more than the job could have used (or a prompt the
 * estimate undercounted) charges no more than the hold: the owner risks what
 * it agreed to, never more. */
static void a_job_never_costs_more_than_it_held(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1];
  grant(f, 1, 1000000, "g");
  assert_int_equal(submit(f, 1, 1, id, NULL), PQ_OK);
  pq_job *job = lease(f);
  int64_t held = job->held_micros;
  assert_int_equal(complete(f, job, 1000, 2147483647), PQ_OK); /* far past max_tokens */
  pq_job_free(job);
  pq_account a = user_account(f, 1);
  assert_int_equal(a.balance, 1000000 - held);
  assert_int_equal(account(f, "revenue").balance, held);
  invariants(f);
}

/* A job cancelled while leased whose worker still delivers keeps its output,
 * and costs what it used (up to its hold); a grant id is one grant. */
static void a_delivered_answer_is_paid_for_even_when_cancelled(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1];
  grant(f, 2, 1000000, "g");
  pq_op other = {.kind = PQ_OP_CREDIT_GRANT, .in.credit_grant = {.user_id = f->users[1], .id = "g", .amount = 1000000}};
  call(f, &other, PQ_ERR_IDEMPOTENCY_MISMATCH); /* the same id for another user */
  pq_op bigger = {.kind = PQ_OP_CREDIT_GRANT, .in.credit_grant = {.user_id = f->users[2], .id = "g", .amount = 5}};
  call(f, &bigger, PQ_ERR_IDEMPOTENCY_MISMATCH); /* ... or another amount */
  assert_int_equal(submit(f, 2, 100, id, NULL), PQ_OK);
  pq_job *job = lease(f);
  pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = id};
  call(f, &cancel, PQ_OK);
  assert_int_equal(complete(f, job, 10, 20), PQ_OK);
  pq_job_free(job);
  pq_job *done = NULL;
  assert_int_equal(pq_coord_get_job(f->c, id, 0, &done), PQ_OK);
  assert_int_equal(done->state, PQ_JOB_CANCELLED);
  assert_int_equal(done->cost_micros, 50);
  pq_job_free(done);
  assert_int_equal(user_account(f, 2).balance, 1000000 - 50);
  invariants(f);
}

static void every_other_end_voids_the_hold(void **state) {
  fixture *f = *state;
  char a[PQ_UUID_LEN + 1], b[PQ_UUID_LEN + 1];
  grant(f, 2, 1000000, "g");
  assert_int_equal(submit(f, 2, 100, a, NULL), PQ_OK);
  assert_int_equal(submit(f, 2, 100, b, NULL), PQ_OK);
  assert_true(user_account(f, 2).held > 0);
  pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = b};
  call(f, &cancel, PQ_OK);
  pq_job *job = lease(f);
  pq_op fail = {.kind = PQ_OP_FAIL, .in.fail = {.job_id = job->id, .token = job->lease_token, .code = "X",
                                                .message = "no", .retryable = false}};
  call(f, &fail, PQ_OK);
  pq_job_free(job);
  pq_account acc = user_account(f, 2);
  assert_int_equal(acc.held, 0);
  assert_int_equal(acc.balance, 1000000);
  invariants(f);
}

/* Random lives: submits, leases, completions within the worst case,
 * failures, cancels, lapsed leases and grants, for three users; the
 * invariants hold after every step and every hold ends exactly once. */
static void random_lives_keep_the_ledger_balanced(void **state) {
  fixture *f = *state;
  unsigned seed = 12345;
  char ids[256][PQ_UUID_LEN + 1];
  int n_ids = 0;
  for (int u = 0; u < USERS; u++) {
    char gid[16];
    snprintf(gid, sizeof gid, "start-%d", u);
    grant(f, u, 20000, gid);
  }
  for (int step = 0; step < 600; step++) {
    int what = rand_r(&seed) % 7, user = rand_r(&seed) % USERS;
    if (what <= 1 && n_ids < 256) {
      pq_err e = submit(f, user, 1 + rand_r(&seed) % 200, ids[n_ids], NULL);
      assert_true(e == PQ_OK || e == PQ_ERR_INSUFFICIENT_CREDITS);
      if (e == PQ_OK) n_ids++;
    } else if (what == 2 || what == 3) {
      pq_job *job = lease(f);
      if (job) {
        if (what == 2) { /* usage within the worst case: the prompt's and its max_tokens */
          json_t *in = json_loads(job->input, 0, NULL);
          int64_t max = json_integer_value(json_object_get(json_object_get(in, "params"), "max_tokens"));
          json_decref(in);
          assert_int_equal(complete(f, job, rand_r(&seed) % 8, rand_r(&seed) % (max + 1)), PQ_OK);
        } else {
          pq_op fail = {.kind = PQ_OP_FAIL, .in.fail = {.job_id = job->id, .token = job->lease_token, .code = "X",
                                                        .message = "no", .retryable = rand_r(&seed) % 2}};
          call(f, &fail, PQ_OK);
        }
        pq_job_free(job);
      }
    } else if (what == 4 && n_ids > 0) {
      pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = ids[rand_r(&seed) % n_ids]};
      pq_err e = pq_coord_call(f->c, &cancel);
      assert_true(e == PQ_OK || e == PQ_ERR_INVALID_STATE);
      pq_op_release(&cancel);
    } else if (what == 5) { /* leases lapse: retried or dead */
      pq_manual_clock_advance(&f->clock, 1001);
      pq_op reap = {.kind = PQ_OP_REAP};
      call(f, &reap, PQ_OK);
    } else {
      char gid[16];
      snprintf(gid, sizeof gid, "g%d", step);
      grant(f, user, 1 + rand_r(&seed) % 5000, gid);
    }
    invariants(f);
  }
  /* every ended job's hold is settled; every live one's is open */
  for (int i = 0; i < n_ids; i++) {
    pq_job *job = NULL;
    assert_int_equal(pq_coord_get_job(f->c, ids[i], 0, &job), PQ_OK);
    pq_transfer **t = NULL;
    size_t n = 0;
    int64_t total = 0;
    char account[64];
    snprintf(account, sizeof account, "user:%s", job->owner);
    assert_int_equal(pq_coord_transfers(f->c, account, 1000, 0, &t, &n, &total), PQ_OK);
    int holds = 0;
    for (size_t k = 0; k < n; k++)
      if (t[k]->job_id && strcmp(t[k]->job_id, job->id) == 0 && strcmp(t[k]->kind, "hold") == 0) {
        holds++;
        assert_int_equal(t[k]->state == PQ_TRANSFER_PENDING, !pq_job_state_terminal(job->state));
        if (job->state == PQ_JOB_COMPLETED) assert_int_equal(t[k]->posted, job->cost_micros);
      }
    assert_int_equal(holds, 1);
    pq_transfer_free_array(t, n);
    pq_job_free(job);
  }
}

static void on_done(pq_op *op) { (void)op; }

/* 200 submits at once against a balance that covers exactly ten worst cases. */
static void a_burst_of_submits_never_overspends(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1];
  int64_t needed = 0;
  assert_int_equal(submit(f, 0, 50, id, &needed), PQ_ERR_INSUFFICIENT_CREDITS);
  grant(f, 0, needed * 10, "exactly-ten");
  pq_op *ops = calloc(200, sizeof *ops);
  for (int i = 0; i < 200; i++) {
    ops[i] = (pq_op){.kind = PQ_OP_SUBMIT, .in.submit.job = new_job(f, 0, 50), .done = on_done};
    pq_coord_submit(f->c, &ops[i]); /* all queued before any answer */
  }
  int ok = 0, refused = 0;
  for (int i = 0; i < 200; i++) {
    pq_op probe = {.kind = PQ_OP_REAP}; /* the writer runs in order: once this is done, so is ops[i] */
    if (i == 0) call(f, &probe, PQ_OK);
    ok += ops[i].out.result == PQ_OK;
    refused += ops[i].out.result == PQ_ERR_INSUFFICIENT_CREDITS;
    pq_op_release(&ops[i]);
  }
  free(ops);
  assert_int_equal(ok, 10);
  assert_int_equal(refused, 190);
  pq_account a = user_account(f, 0);
  assert_int_equal(a.held, needed * 10);
  assert_int_equal(a.balance - a.held, 0);
  invariants(f);
}

static void budget(fixture *f, const char *subject, const char *period, int64_t limit) {
  pq_budget b = {.subject = (char *)subject, .period = (char *)period, .limit_micros = limit};
  pq_op op = {.kind = PQ_OP_BUDGET_SET, .in.budget_set.budget = &b};
  call(f, &op, PQ_OK);
}

static pq_err submit_with_key(fixture *f, int user, const char *key, pq_op *out) {
  *out = (pq_op){.kind = PQ_OP_SUBMIT, .in.submit = {.job = new_job(f, user, 100), .key_id = key}};
  return pq_coord_call(f->c, out);
}

/* Budgets count open holds at once (no concurrent overspend), then what was
 * really spent since the period began; a key's budget binds only that key. */
static void budgets_count_holds_then_spending(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1], account[64];
  int64_t worst = 0;
  grant(f, 0, 1000000, "g");
  assert_int_equal(submit(f, 0, 100, id, NULL), PQ_OK);
  worst = user_account(f, 0).held;
  snprintf(account, sizeof account, "user:%s", f->users[0]);
  budget(f, account, "day", 3 * worst + 3);
  assert_int_equal(submit(f, 0, 100, id, NULL), PQ_OK);
  assert_int_equal(submit(f, 0, 100, id, NULL), PQ_OK);
  pq_op op;
  assert_int_equal(submit_with_key(f, 0, NULL, &op), PQ_ERR_BUDGET_EXCEEDED); /* three holds fill it */
  assert_int_equal(op.out.money.available, 3);
  assert_int_equal(op.out.money.limit, 3 * worst + 3);
  assert_string_equal(op.out.money.period, "day");
  assert_string_equal(op.out.money.subject, account);
  pq_op_release(&op);
  pq_job *job = lease(f);
  assert_int_equal(complete(f, job, 1, 1), PQ_OK); /* 3 micros spent, its hold released */
  pq_job_free(job);
  assert_int_equal(submit(f, 0, 100, id, NULL), PQ_OK); /* 3 spent + 2 holds: room for one more */
  assert_int_equal(submit_with_key(f, 0, NULL, &op), PQ_ERR_BUDGET_EXCEEDED);
  pq_op_release(&op);
  budget(f, account, "day", 0); /* removed */
  /* a key's budget */
  budget(f, "key:k1", "month", worst);
  assert_int_equal(submit_with_key(f, 0, "k1", &op), PQ_OK);
  pq_op_release(&op);
  assert_int_equal(submit_with_key(f, 0, "k1", &op), PQ_ERR_BUDGET_EXCEEDED);
  assert_string_equal(op.out.money.subject, "key:k1");
  pq_op_release(&op);
  assert_int_equal(submit_with_key(f, 0, "k2", &op), PQ_OK); /* another key of the same user */
  pq_op_release(&op);
  invariants(f);
}

/* A council holds the worst case of all its members' rounds and its
 * synthesis, and pays the sum of what its children really cost. */
static void a_council_pays_the_sum_of_its_children(void **state) {
  fixture *f = *state;
  static const char *const members[] = {"m"};
  pq_council_defaults d = {.members = members, .n_members = 1, .member_timeout_ms = 5000, .max_tokens = 50};
  assert_int_equal(pq_council_configure(&d), 0);
  grant(f, 1, 1000000, "g");
  json_t *input = json_pack("{s:s,s:i}", "query", "what?", "maxRounds", 2);
  pq_jerr why = {0};
  assert_int_equal(pq_job_kind_find("council")->validate(input, &why), PQ_OK);
  pq_job *job = pq_job_new();
  job->kind = strdup("council");
  job->model = strdup("council");
  job->owner = strdup(f->users[1]);
  job->input = json_dumps(input, JSON_COMPACT);
  json_decref(input);
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = job};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  char id[PQ_UUID_LEN + 1];
  memcpy(id, op.out.job->id, sizeof id);
  int64_t held = op.out.job->held_micros;
  pq_op_release(&op);
  assert_true(held > 0);
  assert_int_equal(user_account(f, 1).held, held);
  /* an owned worker (user 0's) does the council's work: it earns half of each child's cost */
  pq_worker w = {.name = "owned", .models = "[\"m\"]", .capabilities = "{}", .owner = f->users[0]};
  pq_op reg = {.kind = PQ_OP_REGISTER, .in.reg.worker = &w};
  call(f, &reg, PQ_OK);
  memcpy(f->worker, w.id, sizeof f->worker);
  pq_job *member = lease(f); /* one member, one round (a single answer agrees with itself) */
  assert_int_equal(member->held_micros, 0); /* children hold nothing: their council holds for them */
  assert_int_equal(complete(f, member, 10, 20), PQ_OK);
  pq_job_free(member);
  pq_job *synthesis = lease(f);
  assert_int_equal(complete(f, synthesis, 5, 5), PQ_OK);
  pq_job_free(synthesis);
  pq_job *council = NULL;
  assert_int_equal(pq_coord_get_job(f->c, id, 0, &council), PQ_OK);
  assert_int_equal(council->state, PQ_JOB_COMPLETED);
  assert_int_equal(council->cost_micros, (10 + 40) + (5 + 10));
  pq_job_free(council);
  pq_account a = user_account(f, 1);
  assert_int_equal(a.balance, 1000000 - 65);
  assert_int_equal(a.held, 0);
  assert_int_equal(account(f, "upstream").balance, (5 + 20) + (3 + 5)); /* each child's own, rounded up */
  assert_int_equal(user_account(f, 0).balance, 50 / 2 + 15 / 2); /* the worker's owner: half of each child's cost */
  invariants(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_job_holds_its_worst_case_and_pays_its_real_cost, setup, teardown),
      cmocka_unit_test_setup_teardown(a_job_never_costs_more_than_it_held, setup, teardown),
      cmocka_unit_test_setup_teardown(a_delivered_answer_is_paid_for_even_when_cancelled, setup, teardown),
      cmocka_unit_test_setup_teardown(every_other_end_voids_the_hold, setup, teardown),
      cmocka_unit_test_setup_teardown(random_lives_keep_the_ledger_balanced, setup, teardown),
      cmocka_unit_test_setup_teardown(a_burst_of_submits_never_overspends, setup, teardown),
      cmocka_unit_test_setup_teardown(budgets_count_holds_then_spending, setup, teardown),
      cmocka_unit_test_setup_teardown(a_council_pays_the_sum_of_its_children, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
