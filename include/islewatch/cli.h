/*
 * The `islewatch` CLI's commands. Each takes its own argv (argv[0] is the
 * command name) and returns the process exit code: 0 success, 1 a negative
 * answer (invalid config, failed test, mismatch), 2 usage error or an input
 * that cannot be read, 3 a runtime failure (daemon unreachable, store error).
 */
#ifndef ISLEWATCH_CLI_H
#define ISLEWATCH_CLI_H

/* `islewatch check FILE`: diagnostics on stderr, "FILE: OK (...)" on stdout. */
int iw_cmd_check(int argc, char **argv);     /* server/cli/cmd_check.c */
int iw_cmd_series(int argc, char **argv);    /* server/cli/cmd_query.c */
int iw_cmd_query(int argc, char **argv);     /* server/cli/cmd_query.c */
int iw_cmd_alerts(int argc, char **argv);    /* server/cli/cmd_alerts.c */
int iw_cmd_tail(int argc, char **argv);      /* server/cli/cmd_tail.c */
int iw_cmd_ack(int argc, char **argv);       /* server/cli/cmd_ack.c */
int iw_cmd_test(int argc, char **argv);      /* server/cli/cmd_test.c */
int iw_cmd_backtest(int argc, char **argv);  /* server/cli/cmd_backtest.c */
int iw_cmd_report(int argc, char **argv);    /* server/cli/cmd_report.c */

#endif /* ISLEWATCH_CLI_H */
