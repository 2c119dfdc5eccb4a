#!/usr/bin/python3
"""Django against PostgreSQL: one management command of a minimal project.

  django_shop.py ACTION --host H --port P --user U --db D

The project is made in a temporary folder at each run, always the same:
settings with the given PostgreSQL database, INSTALLED_APPS contenttypes,
auth and one app `shop` (models Product and Order, migrations 0001_initial
and 0002_order_product_price, as makemigrations writes them) and a fixture of
60 objects (40 products, 20 orders). ACTION is what a person types:

  migrate           manage.py migrate                    (a fresh database)
  loaddata          manage.py loaddata shop.json         (a migrated database)
  flush             manage.py flush --noinput
  migrate-zero      manage.py migrate shop zero
  sqlflush-dbshell  manage.py sqlflush | manage.py dbshell -- -v ON_ERROR_STOP=1

The first four run in this process (what manage.py does); the last one runs
two manage.py processes joined by a pipe, and what psql says on its stderr is
the client's error. Output and exit status: clientlib.py.
"""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402

SETTINGS = """\
SECRET_KEY = "killswitch-test-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {{"default": {{
    "ENGINE": "django.db.backends.postgresql",
    "NAME": {db!r}, "USER": {user!r}, "PASSWORD": {password!r},
    "HOST": {host!r}, "PORT": {port!r},
}}}}
"""

MODELS = """\
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    sku = models.CharField(max_length=20, unique=True)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)


class Order(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.IntegerField()
"""

MIGRATION_1 = """\
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("sku", models.CharField(max_length=20, unique=True)),
            ],
        ),
    ]
"""

MIGRATION_2 = """\
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("shop", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="product",
            name="price",
            field=models.DecimalField(decimal_places=2, default=0, max_digits=8),
        ),
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("quantity", models.IntegerField()),
                ("product", models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE, to="shop.product")),
            ],
        ),
    ]
"""

MANAGE = """\
#!/usr/bin/env python3
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ksproj.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"""


def fixture():
    objs = []
    for i in range(1, 41):
        objs.append({"model": "shop.product", "pk": i,
                     "fields": {"name": "product %d" % i, "sku": "SKU-%04d" % i,
                                "price": "%d.50" % i}})
    for i in range(1, 21):
        objs.append({"model": "shop.order", "pk": i,
                     "fields": {"product": i, "quantity": i * 2}})
    return objs


def make_project(root, a):
    files = {
        "manage.py": MANAGE,
        "ksproj/__init__.py": "",
        "ksproj/settings.py": SETTINGS.format(db=a.db, user=a.user, password=a.password,
                                              host=a.host, port=str(a.port)),
        "shop/__init__.py": "",
        "shop/models.py": MODELS,
        "shop/migrations/__init__.py": "",
        "shop/migrations/0001_initial.py": MIGRATION_1,
        "shop/migrations/0002_order_product_price.py": MIGRATION_2,
        "shop/fixtures/shop.json": json.dumps(fixture(), indent=1),
    }
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def in_process(root, args):
    sys.path.insert(0, root)
    os.environ["DJANGO_SETTINGS_MODULE"] = "ksproj.settings"
    import django
    from django.core.management import call_command

    django.setup()
    with clientlib.Timer() as t:
        try:
            call_command(*args)
        except Exception as e:  # noqa: BLE001 - what Django reports
            return clientlib.client_error(e)
    return clientlib.done(t)


def sqlflush_dbshell(root):
    manage = [sys.executable, "-B", os.path.join(root, "manage.py")]
    with clientlib.Timer() as t:
        sql = subprocess.run(manage + ["sqlflush"], cwd=root, capture_output=True, text=True)
        if sql.returncode != 0:
            return clientlib.client_error(sql.stderr, "sqlflush")
        shell = subprocess.run(manage + ["dbshell", "--", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                               cwd=root, input=sql.stdout, capture_output=True, text=True)
    sys.stdout.write(shell.stdout)
    if shell.returncode != 0:
        # psql's own words first, then manage.py's.
        return clientlib.client_error(shell.stderr or "dbshell exited %d" % shell.returncode,
                                      "dbshell")
    return clientlib.done(t)


def main():
    a = clientlib.parse(__doc__.splitlines()[0],
                        ["migrate", "loaddata", "flush", "migrate-zero", "sqlflush-dbshell"],
                        default_port="5432", default_user="postgres", default_db="shop")
    with tempfile.TemporaryDirectory(prefix="ks-django-") as root:
        make_project(root, a)
        if a.action == "sqlflush-dbshell":
            return sqlflush_dbshell(root)
        args = {
            "migrate": ["migrate", "--noinput", "-v", "0"],
            "loaddata": ["loaddata", "shop.json", "-v", "0"],
            "flush": ["flush", "--noinput", "-v", "0"],
            "migrate-zero": ["migrate", "shop", "zero", "--noinput", "-v", "0"],
        }[a.action]
        return in_process(root, args)


if __name__ == "__main__":
    sys.exit(main())
