"""`python -m services.notification`: run the notification service."""

import asyncio

from services.notification.app import create_app

if __name__ == "__main__":
    asyncio.run(create_app().run())
