/* promptq price set|ls, promptq credit grant|show and promptq budget set|ls: money on a store
 * directly (also while it is served), through an engine of their own and the
 * ledger's typed operations. Amounts are USD decimals ("10.50"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/ids.h"
#include "cli/cli.h"
#include "cli/options.h"

typedef struct {
  char data[1024];
  char store[1200];
  char input[32], output[32], cost_input[32], cost_output[32];
  char id[128];
  char period[8], key[64];
} money_opts;

#define O(field) offsetof(money_opts, field)
#define S(field) sizeof(((money_opts *)0)->field)
static const pq_opt money_options[] = {
    {"data", "PROMPTQ_DATA", PQ_OPT_STR, O(data), S(data), "./data", 0, 0, "the data folder"},
    {"store", "PROMPTQ_STORE", PQ_OPT_STR, O(store), S(store), NULL, 0, 0,
     "the store's URL (default: sqlite://DATA/promptq.db)"},
    {"input", NULL, PQ_OPT_STR, O(input), S(input), NULL, 0, 0, "price set: USD per million input tokens"},
    {"output", NULL, PQ_OPT_STR, O(output), S(output), NULL, 0, 0, "price set: USD per million output tokens"},
    {"cost-input", NULL, PQ_OPT_STR, O(cost_input), S(cost_input), "0", 0, 0,
     "price set: what a million input tokens cost the operator"},
    {"cost-output", NULL, PQ_OPT_STR, O(cost_output), S(cost_output), "0", 0, 0,
     "price set: what a million output tokens cost the operator"},
    {"id", NULL, PQ_OPT_STR, O(id), S(id), NULL, 0, 0, "credit grant: its id (a grant is made once per id)"},
    {"period", NULL, PQ_OPT_STR, O(period), S(period), "month", 0, 0, "budget set: day or month"},
    {"key", NULL, PQ_OPT_STR, O(key), S(key), NULL, 0, 0, "budget set: an API key's id instead of a user"},
};
#undef O
#undef S
#define N_OPTS (sizeof money_options / sizeof money_options[0])

static int load(const char *cmd, const char *what, int argc, char **argv, money_opts *o, pq_args *args) {
  char err[512];
  if (pq_opts_load(money_options, N_OPTS, o, argc, argv, args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq %s: %s\n", cmd, err);
    return 2;
  }
  if (args->help) {
    pq_opts_usage(stdout, what, "Prices and credit in a data folder (also while it is served).", money_options, N_OPTS);
    return 0;
  }
  return -1;
}

static int usd(const char *cmd, const char *flag, const char *text, int64_t *out) {
  if (pq_micros_parse(text, out) == 0) return 0;
  fprintf(stderr, "promptq %s: %s must be a USD amount such as 0.50 (at most 6 decimals), not '%s'\n", cmd, flag,
          text);
  return -1;
}

int pq_cmd_price(int argc, char **argv) {
  money_opts o;
  pq_args args;
  const char *what = "promptq price set MODEL --input USD --output USD [--cost-input USD --cost-output USD] | ls";
  int rc = load("price", what, argc, argv, &o, &args);
  if (rc >= 0) return rc;
  const char *verb = args.n_positional ? args.positional[0] : "";
  bool set = strcmp(verb, "set") == 0;
  if (set ? args.n_positional != 2 || !o.input[0] || !o.output[0] : strcmp(verb, "ls") != 0 || args.n_positional != 1) {
    pq_opts_usage(stderr, what, "Prices per model.", money_options, N_OPTS);
    return 2;
  }
  pq_price p = {.model = (char *)(set ? args.positional[1] : "")};
  if (set && (usd("price", "--input", o.input, &p.input_per_mtok) || usd("price", "--output", o.output, &p.output_per_mtok) ||
              usd("price", "--cost-input", o.cost_input, &p.cost_input_per_mtok) ||
              usd("price", "--cost-output", o.cost_output, &p.cost_output_per_mtok)))
    return 2;
  pq_coord *c = pq_cli_engine_open(o.store, o.data);
  if (!c) return 1;
  pq_err e;
  char a[32], b[32], ca[32], cb[32];
  if (set) {
    pq_op op = {.kind = PQ_OP_PRICE_SET, .in.price_set.price = &p};
    e = pq_coord_call(c, &op);
    pq_op_release(&op);
    if (e == PQ_OK)
      printf("%s: %s in, %s out per million tokens (the operator pays %s, %s)\n", p.model,
             pq_micros_format(p.input_per_mtok, a, sizeof a), pq_micros_format(p.output_per_mtok, b, sizeof b),
             pq_micros_format(p.cost_input_per_mtok, ca, sizeof ca),
             pq_micros_format(p.cost_output_per_mtok, cb, sizeof cb));
  } else {
    pq_price **prices = NULL;
    size_t n = 0;
    if ((e = pq_coord_prices(c, &prices, &n)) == PQ_OK) {
      printf("%-32s %14s %14s %14s %14s\n", "MODEL (USD per 1M tokens)", "INPUT", "OUTPUT", "COST IN", "COST OUT");
      for (size_t i = 0; i < n; i++)
        printf("%-32s %14s %14s %14s %14s\n", prices[i]->model, pq_micros_format(prices[i]->input_per_mtok, a, sizeof a),
               pq_micros_format(prices[i]->output_per_mtok, b, sizeof b),
               pq_micros_format(prices[i]->cost_input_per_mtok, ca, sizeof ca),
               pq_micros_format(prices[i]->cost_output_per_mtok, cb, sizeof cb));
      pq_price_free_array(prices, n);
    }
  }
  if (e != PQ_OK) fprintf(stderr, "promptq price: %s\n", pq_err_message(e));
  pq_coord_close(c);
  return e == PQ_OK ? 0 : 1;
}

int pq_cmd_credit(int argc, char **argv) {
  money_opts o;
  pq_args args;
  const char *what = "promptq credit grant USER USD [--id ID] | show USER";
  int rc = load("credit", what, argc, argv, &o, &args);
  if (rc >= 0) return rc;
  const char *verb = args.n_positional ? args.positional[0] : "";
  bool grant = strcmp(verb, "grant") == 0;
  if (grant ? args.n_positional != 3 : strcmp(verb, "show") != 0 || args.n_positional != 2) {
    pq_opts_usage(stderr, what, "A user's credit.", money_options, N_OPTS);
    return 2;
  }
  int64_t amount = 0;
  if (grant && (usd("credit", "the amount", args.positional[2], &amount) || amount <= 0)) {
    if (amount <= 0) fprintf(stderr, "promptq credit: the amount must be above 0\n");
    return 2;
  }
  pq_coord *c = pq_cli_engine_open(o.store, o.data);
  if (!c) return 1;
  pq_user *u = NULL;
  const char *who = args.positional[1];
  pq_err e = pq_coord_find_user(c, who, &u);
  if (e == PQ_OK && grant) {
    char id[PQ_UUID_LEN + 1];
    if (!o.id[0]) pq_uuid7(pq_now_ms(), id);
    pq_op op = {.kind = PQ_OP_CREDIT_GRANT,
                .in.credit_grant = {.user_id = u->id, .id = o.id[0] ? o.id : id, .amount = amount}};
    e = pq_coord_call(c, &op);
    pq_op_release(&op);
    if (e == PQ_ERR_ALREADY_EXISTS) {
      printf("grant %s was made before: nothing changed\n", o.id);
      e = PQ_OK;
    } else if (e == PQ_ERR_IDEMPOTENCY_MISMATCH) {
      fprintf(stderr, "promptq credit: grant %s was made before, for another user or amount\n", o.id);
    }
  }
  if (e == PQ_OK) {
    char account[PQ_ACCOUNT_LEN], bal[32], held[32], avail[32];
    pq_user_account(account, u->id);
    pq_account a;
    if ((e = pq_coord_account(c, account, &a)) == PQ_OK)
      printf("%s: balance %s USD, held %s, available %s\n", u->name, pq_micros_format(a.balance, bal, sizeof bal),
             pq_micros_format(a.held, held, sizeof held), pq_micros_format(a.balance - a.held, avail, sizeof avail));
  }
  if (e == PQ_ERR_NOT_FOUND) fprintf(stderr, "promptq credit: no user %s\n", who);
  else if (e != PQ_OK && e != PQ_ERR_IDEMPOTENCY_MISMATCH) fprintf(stderr, "promptq credit: %s\n", pq_err_message(e));
  pq_user_free(u);
  pq_coord_close(c);
  return e == PQ_OK ? 0 : 1;
}

int pq_cmd_budget(int argc, char **argv) {
  money_opts o;
  pq_args args;
  const char *what = "promptq budget set (USER | --key KEY_ID) USD [--period day|month] | ls   (USD 0 removes it)";
  int rc = load("budget", what, argc, argv, &o, &args);
  if (rc >= 0) return rc;
  const char *verb = args.n_positional ? args.positional[0] : "";
  bool set = strcmp(verb, "set") == 0;
  int want = o.key[0] ? 2 : 3;
  if (set ? args.n_positional != want : strcmp(verb, "ls") != 0 || args.n_positional != 1) {
    pq_opts_usage(stderr, what, "Spending limits per user or API key.", money_options, N_OPTS);
    return 2;
  }
  int64_t limit = 0;
  if (set && usd("budget", "the limit", args.positional[want - 1], &limit)) return 2;
  if (set && strcmp(o.period, "day") != 0 && strcmp(o.period, "month") != 0) {
    fprintf(stderr, "promptq budget: --period must be day or month\n");
    return 2;
  }
  pq_coord *c = pq_cli_engine_open(o.store, o.data);
  if (!c) return 1;
  pq_err e = PQ_OK;
  char subject[80], shown[32];
  if (set) {
    if (o.key[0]) { /* by its id or the prefix a listing shows */
      char id[PQ_UUID_LEN + 1];
      if ((e = pq_coord_find_key(c, o.key, NULL, id)) == PQ_OK) snprintf(subject, sizeof subject, "key:%s", id);
      else if (e == PQ_ERR_NOT_FOUND)
        fprintf(stderr, "promptq budget: no key %s (give its id or the prefix 'promptq key ls' shows)\n", o.key);
    } else {
      pq_user *u = NULL;
      const char *who = args.positional[1];
      if ((e = pq_coord_find_user(c, who, &u)) == PQ_OK)
        pq_user_account(subject, u->id);
      else if (e == PQ_ERR_NOT_FOUND) fprintf(stderr, "promptq budget: no user %s\n", who);
      pq_user_free(u);
    }
    if (e == PQ_OK) {
      pq_budget b = {.subject = subject, .period = o.period, .limit_micros = limit};
      pq_op op = {.kind = PQ_OP_BUDGET_SET, .in.budget_set.budget = &b};
      if ((e = pq_coord_call(c, &op)) == PQ_OK)
      {
        if (limit) printf("%s: at most %s USD a %s\n", subject, pq_micros_format(limit, shown, sizeof shown), o.period);
        else printf("%s: no %s budget\n", subject, o.period);
      }
      pq_op_release(&op);
    }
  } else {
    pq_budget **list = NULL;
    size_t n = 0;
    if ((e = pq_coord_budgets(c, NULL, &list, &n)) == PQ_OK) {
      printf("%-44s %-6s %14s\n", "SUBJECT", "PERIOD", "LIMIT (USD)");
      for (size_t i = 0; i < n; i++)
        printf("%-44s %-6s %14s\n", list[i]->subject, list[i]->period,
               pq_micros_format(list[i]->limit_micros, shown, sizeof shown));
      pq_budget_free_array(list, n);
    }
  }
  if (e != PQ_OK && e != PQ_ERR_NOT_FOUND) fprintf(stderr, "promptq budget: %s\n", pq_err_message(e));
  pq_coord_close(c);
  return e == PQ_OK ? 0 : 1;
}
