"""Daily KRX price ingestion with kisfeed.

Every weekday after the KRX close (16:10 KST; the regular session ends at
15:30) this DAG:

1. asks ``kisfeed calendar is-trading-day`` whether KRX traded today and skips
   the rest of the run on market holidays (exit 1 = closed -> skipped, exit 0 =
   open; any other exit fails the task so a broken binary is not mistaken
   for a holiday);
2. runs ``kisfeed ingest --json`` for that day: the whole market's OHLCV,
   validated, written exactly once to ``DATABASE_URL`` (resumable, so a retry
   fetches only what is missing). Its JSON summary is pushed to XCom under
   ``return_value``;
3. runs ``kisfeed verify --json`` on a random sample as a spot check.

Configuration comes from Airflow Variables (with defaults):
``kisfeed_bin`` (path to the binary), ``kisfeed_database_url`` (falls back to
the worker's DATABASE_URL) and ``kisfeed_max_failure_ratio``. KIS credentials
(KIS_APP_KEY, KIS_APP_SECRET) must be in the worker's environment or in the
.env file next to the binary; they are never passed on a command line.

It replaces the mock fetcher of the earlier daily_price_ingestion_dag.py.
"""

from __future__ import annotations

import json
import os
import subprocess

import pendulum
from airflow import DAG
from airflow.exceptions import AirflowException, AirflowFailException

try:  # Airflow 3: operators live in the standard provider, Variable in the SDK
    from airflow.providers.standard.operators.python import (
        PythonOperator, ShortCircuitOperator)
    from airflow.sdk import Variable
except ImportError:  # Airflow 2
    from airflow.models import Variable
    from airflow.operators.python import PythonOperator, ShortCircuitOperator

KST = pendulum.timezone("Asia/Seoul")

# Exit codes of kisfeed ingest.
EXIT_OK = 0
EXIT_FAILURES = 1  # too many codes without bars, or an error
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _var(key: str, default: str) -> str:
    try:
        return Variable.get(key, default=default)  # Airflow 3
    except TypeError:
        return Variable.get(key, default_var=default)  # Airflow 2


def _bin() -> str:
    return _var("kisfeed_bin", "kisfeed")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    db = _var("kisfeed_database_url", "")
    if db:
        env["DATABASE_URL"] = db
    # Structured log lines on stderr instead of a progress bar.
    env.setdefault("LOG_FORMAT", "json")
    return env


def _trade_date(context) -> str:
    # The run for the interval ending at 16:10 KST covers that day's
    # session: data_interval_end in KST is the trading day to load.
    return context["data_interval_end"].in_timezone(KST).strftime("%Y-%m-%d")


def is_trading_day(**context) -> bool:
    """Return False (skip downstream) on KRX holidays."""
    day = _trade_date(context)
    proc = subprocess.run(
        [_bin(), "calendar", "is-trading-day", day],
        capture_output=True, text=True, env=_env(), timeout=60,
    )
    if proc.returncode == 0:
        return True
    if proc.returncode == 1:
        print(f"{day}: KRX closed, skipping ingestion")
        return False
    raise AirflowException(
        f"kisfeed calendar exited {proc.returncode}: {proc.stderr.strip()}")


def ingest(**context) -> dict:
    """Run kisfeed ingest for the day; return (push to XCom) its summary."""
    day = _trade_date(context)
    ratio = _var("kisfeed_max_failure_ratio", "0.001")
    cmd = [_bin(), "ingest", "--json", "--date", day, "--max-failure-ratio", ratio]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(),
                          timeout=60 * 60)
    # Progress and warnings are on stderr: keep them in the task log.
    if proc.stderr:
        print(proc.stderr)
    summary = None
    if proc.stdout.strip():
        try:
            summary = json.loads(proc.stdout)
        except json.JSONDecodeError:
            print(proc.stdout)
    if summary is not None:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    if proc.returncode == EXIT_OK:
        return summary
    # Push what we have even on failure, for the alert to show.
    if summary is not None:
        context["ti"].xcom_push(key="summary", value=summary)
    msg = f"kisfeed ingest exited {proc.returncode}"
    if summary is not None:
        msg += (f": status={summary.get('status')} failed={summary.get('failed')}"
                f" incomplete={summary.get('incomplete')} {summary.get('error', '')}")
    else:
        msg += ": " + proc.stderr.strip()[-500:]
    if proc.returncode == EXIT_USAGE:
        # Bad arguments will not fix themselves: fail without retrying.
        raise AirflowFailException(msg)
    # 1 (too many failures, an error) and 130 (interrupted) are retried:
    # the rerun is resumable and fetches only the missing codes.
    raise AirflowException(msg)


def verify(**context) -> dict:
    """Spot-check a random sample of the stored bars against the source."""
    day = _trade_date(context)
    proc = subprocess.run(
        [_bin(), "verify", "--json", "--date", day, "--sample", "100"],
        capture_output=True, text=True, env=_env(), timeout=30 * 60,
    )
    if proc.stderr:
        print(proc.stderr)
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    if proc.returncode != 0:
        raise AirflowException(
            f"kisfeed verify exited {proc.returncode}: {report}")
    return report


default_args = {
    "owner": "data-platform",
    "retries": 3,
    "retry_delay": pendulum.duration(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": pendulum.duration(minutes=30),
    "execution_timeout": pendulum.duration(hours=1),
}

with DAG(
    dag_id="daily_price_ingestion",
    description="KRX daily OHLCV for every listed stock via kisfeed",
    schedule="10 16 * * 1-5",  # 16:10 KST, Monday to Friday
    start_date=pendulum.datetime(2025, 1, 1, tz=KST),
    catchup=False,
    max_active_runs=1,  # one writer at a time
    default_args=default_args,
    tags=["kisfeed", "market-data"],
    doc_md=__doc__,
) as dag:
    check_trading_day = ShortCircuitOperator(
        task_id="is_trading_day",
        python_callable=is_trading_day,
        retries=1,
    )
    ingest_prices = PythonOperator(
        task_id="ingest",
        python_callable=ingest,
    )
    verify_sample = PythonOperator(
        task_id="verify",
        python_callable=verify,
        retries=1,
    )

    check_trading_day >> ingest_prices >> verify_sample
