"""`python -m services.notification`: run the notification service."""

from services.notification.app import create_app
from shared.plumbing.event_loop import run_service

if __name__ == "__main__":
    run_service(create_app().run())
