"""The rental service layer: handlers that take a unit of work, an actor and (for changes) a command object,
run by `RentalService.run`, and return read models.

Callers (the HTTP API, the web UI, the command worker) never touch the database themselves:

    svc.run(rentals.submit_application, actor, ApplyForHouse(house_id=..., start_date=..., end_date=...))
    svc.search(HouseQuery(city="Lyon"))
"""
