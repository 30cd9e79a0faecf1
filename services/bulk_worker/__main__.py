"""`python -m services.bulk_worker`: run the bulk-renewal worker (it lives with renewal's data)."""

import asyncio

from services.renewal.app import create_bulk_worker_app

if __name__ == "__main__":
    asyncio.run(create_bulk_worker_app().run())
