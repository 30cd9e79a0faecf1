"""`python -m services.bulk_worker`: run the bulk-renewal worker (it lives with renewal's data)."""

from services.renewal.app import create_bulk_worker_app
from shared.plumbing.event_loop import run_service

if __name__ == "__main__":
    run_service(create_bulk_worker_app().run())
