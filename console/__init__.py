"""The operator console: review alerts (snapshot, regions, clip, score), mark false alarms, see camera
health. Server-rendered Starlette + Jinja2, no front-end build step.

Modules: `env` (environment variable names), `settings`, `tables` (the DynamoDB tables it reads and
writes), `store` (alert history queries, reviews and their audit), `access` (who may see which site),
`auth` (ALB OIDC headers on AWS, a start-up token locally), `csrf`, `media` (snapshot and clip
links), `feedback` (the training label), `cameras` (camera status items), `charts` (inline SVG),
`app` (routes), `demo` (a local world seeded from the bundled sample video), `__main__` (the CLI).
"""
