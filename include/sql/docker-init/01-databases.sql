-- docker-compose only: the job-history database next to Airflow's metadata database.
CREATE DATABASE od_job_history OWNER airflow;
