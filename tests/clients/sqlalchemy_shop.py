#!/usr/bin/python3
"""SQLAlchemy (ORM, psycopg2) against PostgreSQL: one thing.

  sqlalchemy_shop.py ACTION --host H --port P --user U --db D

Two mapped classes, Item (table items) and Tag (table tags), no foreign key.

  create       metadata.create_all(), then 50 items and 10 tags added and
               committed through a Session
  drop-all     metadata.drop_all()
  bulk-delete  session.query(Item).delete(); session.commit()  (no filter)
  filtered-delete  session.query(Item).filter(Item.id > 0).delete(): every
               item, through a WHERE only the server can tell reaches them all
  filtered-update  session.query(Item).filter(Item.qty.isnot(None))
               .update({Item.name: "gone"}): every item's name
  delete-one   session.query(Item).filter(Item.id == 7).delete(): one item

Output and exit status: clientlib.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402

from sqlalchemy import Column, Integer, String, create_engine  # noqa: E402
from sqlalchemy.orm import Session, declarative_base  # noqa: E402

Base = declarative_base()


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
    name = Column(String(80), nullable=False)
    qty = Column(Integer, nullable=False, default=0)


class Tag(Base):
    __tablename__ = "tags"
    id = Column(Integer, primary_key=True)
    label = Column(String(40), nullable=False)


def main():
    a = clientlib.parse(__doc__.splitlines()[0],
                        ["create", "drop-all", "bulk-delete", "filtered-delete",
                         "filtered-update", "delete-one"],
                        default_port="5432", default_user="postgres", default_db="shop")
    engine = create_engine("postgresql+psycopg2://%s:%s@%s:%d/%s"
                           % (a.user, a.password, a.host, a.port, a.db))
    with clientlib.Timer() as t:
        try:
            if a.action == "create":
                Base.metadata.create_all(engine)
                with Session(engine) as s:
                    s.add_all([Item(name="item %d" % i, qty=i) for i in range(1, 51)])
                    s.add_all([Tag(label="tag %d" % i) for i in range(1, 11)])
                    s.commit()
            elif a.action == "drop-all":
                Base.metadata.drop_all(engine)
            else:
                with Session(engine) as s:
                    q = s.query(Item)
                    if a.action == "filtered-delete":
                        q.filter(Item.id > 0).delete()
                    elif a.action == "filtered-update":
                        q.filter(Item.qty.isnot(None)).update({Item.name: "gone"})
                    elif a.action == "delete-one":
                        q.filter(Item.id == 7).delete()
                    else:
                        q.delete()
                    s.commit()
        except Exception as e:  # noqa: BLE001 - what SQLAlchemy reports
            return clientlib.client_error(e)
    return clientlib.done(t)


if __name__ == "__main__":
    sys.exit(main())
