ALTER TABLE "public"."ziro_checkpoints" SET (
    ttl_expiration_expression = '((created_at AT TIME ZONE ''UTC'') + INTERVAL ''720 hours'') AT TIME ZONE ''UTC''',
    ttl_job_cron = '@hourly'
)
